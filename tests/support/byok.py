"""What a customer does to import a key, with pyca/cryptography only: wrap material with the public key
GetParametersForImport returned, for each wrapping algorithm, and build the asymmetric envelope
(RSA-wrapped ephemeral AES-256 key || AES key wrap with padding of the PKCS#8 private key)."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

ALGORITHMS = ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSAES_PKCS1_V1_5")


def wrapping_key(public_key_b64: str) -> rsa.RSAPublicKey:
    key = serialization.load_der_public_key(base64.b64decode(public_key_b64))
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _padding(algorithm: str) -> padding.AsymmetricPadding:
    if algorithm == "RSAES_OAEP_SHA_256":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    if algorithm == "RSAES_OAEP_SHA_1":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    assert algorithm == "RSAES_PKCS1_V1_5"
    return padding.PKCS1v15()


def wrap(public_key_b64: str, algorithm: str, material: bytes) -> str:
    """EncryptedKeyMaterial for symmetric material."""
    wrapped = wrapping_key(public_key_b64).encrypt(material, _padding(algorithm))
    return base64.b64encode(wrapped).decode()


def pkcs8(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def envelope(public_key_b64: str, algorithm: str, private_key_der: bytes) -> str:
    """EncryptedKeyMaterial for an asymmetric key: the documented envelope."""
    ephemeral = os.urandom(32)
    head = wrapping_key(public_key_b64).encrypt(ephemeral, _padding(algorithm))
    return base64.b64encode(head + aes_key_wrap_with_padding(ephemeral, private_key_der)).decode()
