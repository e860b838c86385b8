"""PKCS#10 certificate signing requests (RFC 2986) built around a signer.

Owns the encoding of the CertificationRequestInfo and of the request around it. Only the signature
comes from the key's provider, over the SHA-256 digest of the CertificationRequestInfo, so a provider
that never gives out a private key object (an HSM, a key-store proxy) serves CSRs like the software
provider does. Holds no key material: it sees a public key and a signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from openkms.domain.csr import CsrSubject
from openkms.errors import UnsupportedOperation
from openkms.types import AsymmetricAlgorithm

__all__ = ["DigestSigner", "certificate_signing_request", "subject_name"]

# Signs a 32-byte SHA-256 digest with the key whose public half the request carries.
DigestSigner = Callable[[bytes], bytes]

# The signatureAlgorithm AlgorithmIdentifier (DER) of each algorithm a CSR can be signed with,
# exactly as pyca/cryptography writes them: sha256WithRSAEncryption (NULL parameters), RSASSA-PSS
# with SHA-256, MGF1-SHA-256 and a 32-byte salt, ecdsa-with-SHA256 (no parameters).
_ALGORITHM_IDENTIFIERS: Final[dict[AsymmetricAlgorithm, bytes]] = {
    AsymmetricAlgorithm.RSA_PKCS1_SHA_256: bytes.fromhex("300d06092a864886f70d01010b0500"),
    AsymmetricAlgorithm.RSA_PSS_SHA_256: bytes.fromhex(
        "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d0101"
        "08300d06096086480165030402010500a203020120"
    ),
    AsymmetricAlgorithm.ECDSA_SHA_256: bytes.fromhex("300a06082a8648ce3d040302"),
}

_SEQUENCE, _INTEGER, _BIT_STRING, _ATTRIBUTES = 0x30, 0x02, 0x03, 0xA0


def subject_name(subject: CsrSubject) -> x509.Name:
    """The request's subject as an X.509 Name, in the order Alibaba's console writes it."""
    fields = (
        (NameOID.COUNTRY_NAME, subject.country),
        (NameOID.STATE_OR_PROVINCE_NAME, subject.province),
        (NameOID.LOCALITY_NAME, subject.locality),
        (NameOID.ORGANIZATION_NAME, subject.organization),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, subject.organizational_unit),
        (NameOID.COMMON_NAME, subject.common_name),
        (NameOID.EMAIL_ADDRESS, subject.email),
    )
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in fields if value is not None])


def certificate_signing_request(
    public_key_pem: str, algorithm: AsymmetricAlgorithm, subject: CsrSubject, sign: DigestSigner
) -> str:
    """A PEM certificate signing request for `public_key_pem`, signed by `sign` with `algorithm`."""
    identifier = _ALGORITHM_IDENTIFIERS.get(algorithm)
    if identifier is None:
        raise UnsupportedOperation(f"{algorithm} does not sign certificate signing requests.")
    public_key = serialization.load_pem_public_key(public_key_pem.encode("ascii"))
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = _tlv(
        _SEQUENCE,
        _tlv(_INTEGER, b"\x00") + subject_name(subject).public_bytes() + spki + _tlv(_ATTRIBUTES, b""),
    )
    signature = sign(hashlib.sha256(info).digest())
    request = _tlv(_SEQUENCE, info + identifier + _tlv(_BIT_STRING, b"\x00" + signature))
    # Parsed back before it is handed out: a malformed encoding fails here, not at the caller's CA.
    return x509.load_der_x509_csr(request).public_bytes(serialization.Encoding.PEM).decode("ascii")


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element: tag, definite length, content."""
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content
