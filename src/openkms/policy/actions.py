"""The kms:* actions OpenKMS authorizes (the names RAM and key policies refer to), and which of
them count as uses of their key.

Owns `KmsAction`, the names services pass to `authorize`; a policy names them as `kms:<name>`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["INSTANCE_USAGE_ACTIONS", "KMS_ACTIONS", "USAGE_ACTIONS", "KmsAction"]


class KmsAction(StrEnum):
    """An action a KMS policy can allow or deny; its value is the API's action name."""

    CREATE_KEY = "CreateKey"
    DESCRIBE_KEY = "DescribeKey"
    LIST_KEYS = "ListKeys"
    ENABLE_KEY = "EnableKey"
    DISABLE_KEY = "DisableKey"
    ENCRYPT = "Encrypt"
    DECRYPT = "Decrypt"
    RE_ENCRYPT = "ReEncrypt"
    GENERATE_DATA_KEY = "GenerateDataKey"
    GENERATE_DATA_KEY_WITHOUT_PLAINTEXT = "GenerateDataKeyWithoutPlaintext"
    DESCRIBE_REGIONS = "DescribeRegions"
    DESCRIBE_ACCOUNT_KMS_STATUS = "DescribeAccountKmsStatus"
    OPEN_KMS_SERVICE = "OpenKmsService"
    LIST_KMS_INSTANCES = "ListKmsInstances"
    GET_KMS_INSTANCE = "GetKmsInstance"
    GET_KMS_INSTANCE_QUOTA_INFOS = "GetKmsInstanceQuotaInfos"
    GET_DEFAULT_KMS_INSTANCE = "GetDefaultKmsInstance"
    GET_KEY_POLICY = "GetKeyPolicy"
    SET_KEY_POLICY = "SetKeyPolicy"
    # OpenKMS extension: key association detection (F8).
    START_KEY_ASSOCIATION_DETECTION = "StartKeyAssociationDetection"
    DESCRIBE_KEY_ASSOCIATIONS = "DescribeKeyAssociations"
    ASYMMETRIC_SIGN = "AsymmetricSign"
    ASYMMETRIC_VERIFY = "AsymmetricVerify"
    ASYMMETRIC_ENCRYPT = "AsymmetricEncrypt"
    ASYMMETRIC_DECRYPT = "AsymmetricDecrypt"
    GET_PUBLIC_KEY = "GetPublicKey"
    GENERATE_AND_EXPORT_DATA_KEY = "GenerateAndExportDataKey"
    EXPORT_DATA_KEY = "ExportDataKey"
    GENERATE_CERTIFICATE_SIGNING_REQUEST = "GenerateCertificateSigningRequest"
    # Imported key material (bring your own key).
    GET_PARAMETERS_FOR_IMPORT = "GetParametersForImport"
    IMPORT_KEY_MATERIAL = "ImportKeyMaterial"
    DELETE_KEY_MATERIAL = "DeleteKeyMaterial"
    # Lifecycle: descriptions, protection, deletion, rotation, aliases, tags.
    UPDATE_KEY_DESCRIPTION = "UpdateKeyDescription"
    SET_DELETION_PROTECTION = "SetDeletionProtection"
    SCHEDULE_KEY_DELETION = "ScheduleKeyDeletion"
    CANCEL_KEY_DELETION = "CancelKeyDeletion"
    UPDATE_ROTATION_POLICY = "UpdateRotationPolicy"
    CREATE_KEY_VERSION = "CreateKeyVersion"
    DESCRIBE_KEY_VERSION = "DescribeKeyVersion"
    LIST_KEY_VERSIONS = "ListKeyVersions"
    CREATE_ALIAS = "CreateAlias"
    UPDATE_ALIAS = "UpdateAlias"
    DELETE_ALIAS = "DeleteAlias"
    LIST_ALIASES = "ListAliases"
    LIST_ALIASES_BY_KEY_ID = "ListAliasesByKeyId"
    TAG_RESOURCE = "TagResource"
    UNTAG_RESOURCE = "UntagResource"
    LIST_RESOURCE_TAGS = "ListResourceTags"
    TAG_RESOURCES = "TagResources"
    UNTAG_RESOURCES = "UntagResources"
    LIST_TAG_RESOURCES = "ListTagResources"
    # Application access for the instance API: access points, client keys, policies, network rules.
    CREATE_APPLICATION_ACCESS_POINT = "CreateApplicationAccessPoint"
    DESCRIBE_APPLICATION_ACCESS_POINT = "DescribeApplicationAccessPoint"
    LIST_APPLICATION_ACCESS_POINTS = "ListApplicationAccessPoints"
    UPDATE_APPLICATION_ACCESS_POINT = "UpdateApplicationAccessPoint"
    DELETE_APPLICATION_ACCESS_POINT = "DeleteApplicationAccessPoint"
    CREATE_CLIENT_KEY = "CreateClientKey"
    GET_CLIENT_KEY = "GetClientKey"
    LIST_CLIENT_KEYS = "ListClientKeys"
    DELETE_CLIENT_KEY = "DeleteClientKey"
    CREATE_POLICY = "CreatePolicy"
    DESCRIBE_POLICY = "DescribePolicy"
    LIST_POLICIES = "ListPolicies"
    UPDATE_POLICY = "UpdatePolicy"
    DELETE_POLICY = "DeletePolicy"
    CREATE_NETWORK_RULE = "CreateNetworkRule"
    DESCRIBE_NETWORK_RULE = "DescribeNetworkRule"
    LIST_NETWORK_RULES = "ListNetworkRules"
    UPDATE_NETWORK_RULE = "UpdateNetworkRule"
    DELETE_NETWORK_RULE = "DeleteNetworkRule"
    # Secrets (resources acs:kms:<region>:<uid>:secret/<name>); S105 misreads these names as passwords.
    CREATE_SECRET = "CreateSecret"  # noqa: S105
    GET_SECRET_VALUE = "GetSecretValue"  # noqa: S105
    BATCH_GET_SECRET_VALUE = "BatchGetSecretValue"  # noqa: S105
    PUT_SECRET_VALUE = "PutSecretValue"  # noqa: S105
    DESCRIBE_SECRET = "DescribeSecret"  # noqa: S105
    LIST_SECRETS = "ListSecrets"
    LIST_SECRET_VERSION_IDS = "ListSecretVersionIds"  # noqa: S105
    UPDATE_SECRET = "UpdateSecret"  # noqa: S105
    UPDATE_SECRET_VERSION_STAGE = "UpdateSecretVersionStage"  # noqa: S105
    DELETE_SECRET = "DeleteSecret"  # noqa: S105
    RESTORE_SECRET = "RestoreSecret"  # noqa: S105
    GET_SECRET_POLICY = "GetSecretPolicy"  # noqa: S105
    SET_SECRET_POLICY = "SetSecretPolicy"  # noqa: S105
    GET_RANDOM_PASSWORD = "GetRandomPassword"  # noqa: S105
    ROTATE_SECRET = "RotateSecret"  # noqa: S105
    UPDATE_SECRET_ROTATION_POLICY = "UpdateSecretRotationPolicy"  # noqa: S105
    # OpenKMS extension: the development clock (`serve --dev-clock`).
    DEV_ADVANCE_CLOCK = "DevAdvanceClock"


KMS_ACTIONS: Final = frozenset(f"kms:{action}" for action in KmsAction)

# Successful calls of these actions count as uses of their key (F8 key association detection).
USAGE_ACTIONS: Final = frozenset(
    {
        KmsAction.ENCRYPT,
        KmsAction.DECRYPT,
        KmsAction.RE_ENCRYPT,
        KmsAction.GENERATE_DATA_KEY,
        KmsAction.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
        KmsAction.ASYMMETRIC_SIGN,
        KmsAction.ASYMMETRIC_VERIFY,
        KmsAction.ASYMMETRIC_ENCRYPT,
        KmsAction.ASYMMETRIC_DECRYPT,
        KmsAction.GENERATE_AND_EXPORT_DATA_KEY,
        KmsAction.EXPORT_DATA_KEY,
    }
)


# The instance API's operations that use a key (`api/instance`): counted as uses too, by their names.
INSTANCE_USAGE_ACTIONS: Final = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "AdvanceEncrypt",
        "AdvanceDecrypt",
        "GenerateDataKey",
        "AdvanceGenerateDataKey",
        "Sign",
        "Verify",
    }
)
