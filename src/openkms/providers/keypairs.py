"""Asymmetric operations on loaded key objects (pyca/cryptography): key-pair generation, signing a
pre-computed SHA-256 digest, verification, RSAES-OAEP, public-key export and CSR signing.

Owns the mapping from KeySpec and AsymmetricAlgorithm to pyca curves, paddings and hashes; nothing else
in OpenKMS names a padding. Called by the providers for the keys they hold, and by the data-key export
use case for a caller's public key (no key material of ours is involved there). Never logs; the only
serialisation of a private key is `private_key_der`, whose output goes straight to the keystore.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from openkms.errors import (
    InvalidArgument,
    InvalidCiphertext,
    SignatureInvalid,
    StorageIntegrityError,
    UnsupportedOperation,
)
from openkms.secret import SecretBytes
from openkms.types import AsymmetricAlgorithm, KeySpec

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

DIGEST_BYTES: Final = 32
PSS_SALT_BYTES: Final = 32
RSA_PUBLIC_EXPONENT: Final = 65537

_RSA_BITS: Final = {KeySpec.RSA_2048: 2048, KeySpec.RSA_3072: 3072, KeySpec.RSA_4096: 4096}
_CURVES: Final[dict[KeySpec, type[ec.EllipticCurve]]] = {
    KeySpec.EC_P256: ec.SECP256R1,
    KeySpec.EC_P256K: ec.SECP256K1,
}
_OAEP_HASHES: Final[dict[AsymmetricAlgorithm, type[hashes.HashAlgorithm]]] = {
    AsymmetricAlgorithm.RSAES_OAEP_SHA_256: hashes.SHA256,
    AsymmetricAlgorithm.RSAES_OAEP_SHA_1: hashes.SHA1,
}


def generate(spec: KeySpec) -> PrivateKey:
    """A new private key for an asymmetric spec. RSA-4096 takes seconds: call it off the event loop."""
    bits = _RSA_BITS.get(spec)
    if bits is not None:
        return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=bits)
    curve = _CURVES.get(spec)
    if curve is not None:
        return ec.generate_private_key(curve())
    raise UnsupportedOperation(f"{spec} is not an asymmetric key spec.")


def private_key_der(key: PrivateKey) -> SecretBytes:
    """PKCS#8 DER of a private key, for the keystore to wrap. The one place a private key is encoded."""
    return SecretBytes(
        key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def load_private_key(der: SecretBytes, spec: KeySpec) -> PrivateKey:
    """The key object for unwrapped PKCS#8 material; StorageIntegrityError if it is not a `spec` key.

    RSA key validation (about 27 ms for RSA-2048) is skipped: the material was validated when it was
    generated and the keystore's AES-GCM wrap (bound to key id, version and spec) proves it is unchanged.
    Imported keys never come through here: `load_imported_private_key` validates them before wrapping.
    """
    try:
        key = serialization.load_der_private_key(der.reveal(), None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise StorageIntegrityError() from None
    bits = _RSA_BITS.get(spec)
    if bits is not None and isinstance(key, rsa.RSAPrivateKey) and key.key_size == bits:
        return key
    curve = _CURVES.get(spec)
    if curve is not None and isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, curve):
        return key
    raise StorageIntegrityError()


def load_imported_private_key(der: bytes, spec: KeySpec) -> PrivateKey | None:
    """A caller's PKCS#8 private key, fully validated, or None (the caller answers one error for all).

    Unlike `load_private_key` there is no way to skip validation here: RSA keys get OpenSSL's full
    consistency check (p, q prime factors of n, d and the CRT values consistent), EC keys the curve and
    point checks of the loader; then the key must be exactly `spec` and pass a pairwise consistency
    test (sign a digest, verify it with the key's own public half), so a private key whose embedded
    public key does not belong to it is refused.
    """
    try:
        key = serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=False)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    bits = _RSA_BITS.get(spec)
    curve = _CURVES.get(spec)
    probe = bytes(DIGEST_BYTES)
    if bits is not None and isinstance(key, rsa.RSAPrivateKey) and key.key_size == bits:
        algorithm = AsymmetricAlgorithm.RSA_PSS_SHA_256
    elif curve is not None and isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, curve):
        algorithm = AsymmetricAlgorithm.ECDSA_SHA_256
    else:
        return None
    try:
        verify_digest(key.public_key(), algorithm, probe, sign_digest(key, algorithm, probe))
    except (SignatureInvalid, ValueError):
        return None
    return key


def public_key_der(key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo DER."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_pem(key: PublicKey) -> str:
    """SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), as GetPublicKey returns it."""
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_BYTES)


def check_digest(digest: bytes) -> None:
    if len(digest) != DIGEST_BYTES:
        raise InvalidArgument(
            f"Digest must be a {DIGEST_BYTES}-byte SHA-256 digest, not {len(digest)} bytes.",
            parameter="Digest",
        )


def sign_digest(key: PrivateKey, algorithm: AsymmetricAlgorithm, digest: bytes) -> bytes:
    """Sign a 32-byte SHA-256 digest. ECDSA signatures are DER (SEQUENCE of r, s)."""
    check_digest(digest)
    prehashed = Prehashed(hashes.SHA256())
    if isinstance(key, rsa.RSAPrivateKey):
        if algorithm is AsymmetricAlgorithm.RSA_PSS_SHA_256:
            return key.sign(digest, _pss(), prehashed)
        if algorithm is AsymmetricAlgorithm.RSA_PKCS1_SHA_256:
            return key.sign(digest, padding.PKCS1v15(), prehashed)
    elif algorithm is AsymmetricAlgorithm.ECDSA_SHA_256:
        return key.sign(digest, ec.ECDSA(prehashed))
    raise UnsupportedOperation(f"{algorithm} does not sign with this key.")


def verify_digest(key: PublicKey, algorithm: AsymmetricAlgorithm, digest: bytes, signature: bytes) -> None:
    """Return if `signature` is valid for the digest; raise SignatureInvalid otherwise.

    RSA-PSS pins the salt length to 32 bytes; ECDSA takes only DER signatures.
    """
    check_digest(digest)
    prehashed = Prehashed(hashes.SHA256())
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if algorithm is AsymmetricAlgorithm.RSA_PSS_SHA_256:
                key.verify(signature, digest, _pss(), prehashed)
                return
            if algorithm is AsymmetricAlgorithm.RSA_PKCS1_SHA_256:
                key.verify(signature, digest, padding.PKCS1v15(), prehashed)
                return
        elif algorithm is AsymmetricAlgorithm.ECDSA_SHA_256:
            key.verify(signature, digest, ec.ECDSA(prehashed))
            return
    except (InvalidSignature, ValueError):
        raise SignatureInvalid() from None
    raise UnsupportedOperation(f"{algorithm} does not verify with this key.")


def _oaep(algorithm: AsymmetricAlgorithm) -> padding.OAEP:
    hash_type = _OAEP_HASHES.get(algorithm)
    if hash_type is None:
        raise UnsupportedOperation(f"{algorithm} is not an RSAES-OAEP algorithm.")
    return padding.OAEP(mgf=padding.MGF1(hash_type()), algorithm=hash_type(), label=None)


def oaep_encrypt(key: rsa.RSAPublicKey, algorithm: AsymmetricAlgorithm, plaintext: bytes) -> bytes:
    """RSAES-OAEP with MGF1 over the same hash and an empty label. The caller checks the size limit."""
    return key.encrypt(plaintext, _oaep(algorithm))


def oaep_decrypt(key: rsa.RSAPrivateKey, algorithm: AsymmetricAlgorithm, ciphertext: bytes) -> SecretBytes:
    """The plaintext of an RSAES-OAEP ciphertext; InvalidCiphertext for anything that does not decrypt."""
    scheme = _oaep(algorithm)
    if len(ciphertext) != (key.key_size + 7) // 8:
        raise InvalidCiphertext()
    try:
        return SecretBytes(key.decrypt(ciphertext, scheme))
    except ValueError:
        raise InvalidCiphertext() from None


def load_rsa_public_key(der: bytes, bits: int) -> rsa.RSAPublicKey:
    """A caller's RSA public key from SubjectPublicKeyInfo DER with exactly `bits` bits, or ValueError."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a SubjectPublicKeyInfo DER public key") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size != bits:
        raise ValueError(f"not an RSA-{bits} public key")
    return key


def wrap_for_export(public_key_der: bytes, algorithm: AsymmetricAlgorithm, data_key: SecretBytes) -> bytes:
    """Data-key export: RSAES-OAEP of `data_key` to a caller's RSA SubjectPublicKeyInfo (no key
    material of ours is involved, so every provider answers it the same way)."""
    public_key = serialization.load_der_public_key(public_key_der)
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise UnsupportedOperation("Data keys are exported to RSA public keys only.")
    return oaep_encrypt(public_key, algorithm, data_key.reveal())
