"""Data key pairs (the instance API's GenerateDataKeyPair family): a fresh key pair of a named spec,
its private key as PKCS#8 and its public key as SubjectPublicKeyInfo, in PEM or DER. The key pair is
the caller's: KMS seals the private key under one of its keys and keeps nothing. Pure (but for
randomness); SM2 and secp256k1 pairs are not offered (pyca/cryptography makes no SM2 keys).
"""

from __future__ import annotations

from typing import Final, NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from openkms.errors import InvalidArgument

RSA_SIZES: Final = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
EC_CURVES: Final = {"EC_P256": ec.SECP256R1(), "EC_P384": ec.SECP384R1()}
FORMATS: Final = {"PEM": serialization.Encoding.PEM, "DER": serialization.Encoding.DER}


class DataKeyPair(NamedTuple):
    private_key: bytes  # PKCS#8, unencrypted: sealed by the caller's KMS key before it leaves
    public_key: bytes  # SubjectPublicKeyInfo


def generate_data_key_pair(spec: str, key_format: str) -> DataKeyPair:
    """A new key pair of `spec` (RSA_2048/3072/4096, EC_P256, EC_P384) in `key_format` (PEM, the
    default when empty, or DER); InvalidArgument for anything else."""
    encoding = FORMATS.get(key_format or "PEM")
    if encoding is None:
        raise InvalidArgument("KeyFormat must be PEM or DER.", parameter="KeyFormat")
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if spec in RSA_SIZES:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_SIZES[spec])
    elif spec in EC_CURVES:
        private = ec.generate_private_key(EC_CURVES[spec])
    else:
        supported = ", ".join([*RSA_SIZES, *EC_CURVES])
        raise InvalidArgument(f"KeyPairSpec must be one of {supported}.", parameter="KeyPairSpec")
    return DataKeyPair(
        private.private_bytes(encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        private.public_key().public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
