"""The kms:* actions OpenKMS authorizes (the names RAM and key policies refer to), and which of
them count as uses of their key."""

from __future__ import annotations

from typing import Final

KMS_ACTIONS: Final = frozenset(
    {
        "kms:CreateKey",
        "kms:DescribeKey",
        "kms:ListKeys",
        "kms:EnableKey",
        "kms:DisableKey",
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:DescribeRegions",
        "kms:DescribeAccountKmsStatus",
        "kms:OpenKmsService",
        "kms:ListKmsInstances",
        "kms:GetKmsInstance",
        "kms:GetKeyPolicy",
        # OpenKMS extension: key association detection (F8).
        "kms:StartKeyAssociationDetection",
        "kms:DescribeKeyAssociations",
        "kms:SetKeyPolicy",
        "kms:AsymmetricSign",
        "kms:AsymmetricVerify",
        "kms:AsymmetricEncrypt",
        "kms:AsymmetricDecrypt",
        "kms:GetPublicKey",
        "kms:GenerateAndExportDataKey",
        "kms:ExportDataKey",
        "kms:GenerateCertificateSigningRequest",
        # Imported key material (bring your own key).
        "kms:GetParametersForImport",
        "kms:ImportKeyMaterial",
        "kms:DeleteKeyMaterial",
        # Lifecycle: descriptions, protection, deletion, rotation, aliases, tags.
        "kms:UpdateKeyDescription",
        "kms:SetDeletionProtection",
        "kms:ScheduleKeyDeletion",
        "kms:CancelKeyDeletion",
        "kms:UpdateRotationPolicy",
        "kms:CreateKeyVersion",
        "kms:DescribeKeyVersion",
        "kms:ListKeyVersions",
        "kms:CreateAlias",
        "kms:UpdateAlias",
        "kms:DeleteAlias",
        "kms:ListAliases",
        "kms:ListAliasesByKeyId",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:ListResourceTags",
        "kms:TagResources",
        "kms:UntagResources",
        "kms:ListTagResources",
        # OpenKMS extension: the development clock (`serve --dev-clock`).
        "kms:DevAdvanceClock",
    }
)

# Successful calls of these actions count as uses of their key (F8 key association detection).
USAGE_ACTIONS: Final = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "AsymmetricSign",
        "AsymmetricVerify",
        "AsymmetricEncrypt",
        "AsymmetricDecrypt",
        "GenerateAndExportDataKey",
        "ExportDataKey",
    }
)
