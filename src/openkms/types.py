"""Identifier types and the closed vocabularies (specs, usages, states) shared by every layer."""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

AccountId = NewType("AccountId", str)
"""A main account's 16-digit uid."""
KeyId = NewType("KeyId", str)
KeyVersionId = NewType("KeyVersionId", str)
InstanceId = NewType("InstanceId", str)
AccessKeyId = NewType("AccessKeyId", str)
RegionId = NewType("RegionId", str)


class KeySpec(StrEnum):
    ALIYUN_AES_256 = "Aliyun_AES_256"
    ALIYUN_AES_128 = "Aliyun_AES_128"  # hardware instances only
    ALIYUN_AES_192 = "Aliyun_AES_192"  # hardware instances only
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    EC_P256 = "EC_P256"
    EC_P256K = "EC_P256K"


class AsymmetricAlgorithm(StrEnum):
    """Algorithm names of the asymmetric actions (Sign/Verify, Encrypt/Decrypt, data-key export, CSR)."""

    RSA_PSS_SHA_256 = "RSA_PSS_SHA_256"
    RSA_PKCS1_SHA_256 = "RSA_PKCS1_SHA_256"
    ECDSA_SHA_256 = "ECDSA_SHA_256"
    RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"
    RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"


class DataKeySpec(StrEnum):
    AES_128 = "AES_128"
    AES_256 = "AES_256"


class KeyUsage(StrEnum):
    ENCRYPT_DECRYPT = "ENCRYPT/DECRYPT"
    SIGN_VERIFY = "SIGN/VERIFY"


class KeyState(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"
    PENDING_IMPORT = "PendingImport"


class Origin(StrEnum):
    ALIYUN_KMS = "Aliyun_KMS"
    EXTERNAL = "EXTERNAL"


class ProtectionLevel(StrEnum):
    SOFTWARE = "SOFTWARE"
    HSM = "HSM"
    EXTERNAL = "EXTERNAL"  # keys of external instances (not an Alibaba value: see docs/external-keys.md)


class InstanceKind(StrEnum):
    SOFTWARE = "software"
    HARDWARE = "hardware"
    EXTERNAL = "external"


class CreatorType(StrEnum):
    USER = "User"
    SERVICE = "Service"
