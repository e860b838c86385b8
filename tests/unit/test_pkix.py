"""CSRs built around a signer: only the signature comes from the provider (an HSM never hands out a
private key object), and the request is the one pyca/cryptography's builder makes for the same key."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from openkms.domain.csr import make_subject
from openkms.errors import UnsupportedOperation
from openkms.providers import keypairs
from openkms.providers.pkix import certificate_signing_request, subject_name
from openkms.types import AsymmetricAlgorithm

SUBJECT = make_subject(
    "kms.example.com",
    organization="Example",
    organizational_unit="Keys",
    province="Zhejiang",
    locality="Hangzhou",
    country="CN",
    email="pki@example.com",
)
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return keypairs.public_key_pem(key.public_key())


def _algorithm_identifier(csr: x509.CertificateSigningRequest) -> bytes:
    """The DER of the request's signatureAlgorithm: the element right after the signed info."""
    der = csr.public_bytes(serialization.Encoding.DER)
    rest = der[der.index(csr.tbs_certrequest_bytes) + len(csr.tbs_certrequest_bytes) :]
    assert rest[0] == 0x30 and rest[1] < 0x80  # a short SEQUENCE
    return rest[: 2 + rest[1]]


def _builder() -> x509.CertificateSigningRequestBuilder:
    return x509.CertificateSigningRequestBuilder().subject_name(subject_name(SUBJECT))


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def test_a_csr_signed_by_a_sign_only_callable_verifies(rsa_key: rsa.RSAPrivateKey) -> None:
    digests: list[bytes] = []

    def sign_only(digest: bytes) -> bytes:
        # All the signer gets, and all it gives back: a digest in, a signature out.
        digests.append(digest)
        return keypairs.sign_digest(rsa_key, AsymmetricAlgorithm.RSA_PSS_SHA_256, digest)

    pem = certificate_signing_request(
        _public_pem(rsa_key), AsymmetricAlgorithm.RSA_PSS_SHA_256, SUBJECT, sign_only
    )
    csr = x509.load_pem_x509_csr(pem.encode())
    assert csr.is_signature_valid
    assert digests == [hashlib.sha256(csr.tbs_certrequest_bytes).digest()]
    assert csr.subject == subject_name(SUBJECT)
    assert csr.public_key() == rsa_key.public_key()
    assert csr.signature_algorithm_oid == x509.oid.SignatureAlgorithmOID.RSASSA_PSS


def test_pkcs1_gives_the_very_pem_pycas_builder_gives(rsa_key: rsa.RSAPrivateKey) -> None:
    algorithm = AsymmetricAlgorithm.RSA_PKCS1_SHA_256
    ours = certificate_signing_request(
        _public_pem(rsa_key),
        algorithm,
        SUBJECT,
        lambda digest: keypairs.sign_digest(rsa_key, algorithm, digest),
    )
    theirs = _builder().sign(rsa_key, hashes.SHA256(), rsa_padding=padding.PKCS1v15())
    # PKCS#1 v1.5 signatures are deterministic: byte for byte the same request.
    assert ours == theirs.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP256K1()], ids=["P256", "P256K"])
def test_ecdsa_and_pss_requests_match_pycas_but_for_the_random_signature(
    rsa_key: rsa.RSAPrivateKey, curve: ec.EllipticCurve
) -> None:
    ec_key = ec.generate_private_key(curve)
    cases = [
        (ec_key, AsymmetricAlgorithm.ECDSA_SHA_256, _builder().sign(ec_key, hashes.SHA256())),
        (
            rsa_key,
            AsymmetricAlgorithm.RSA_PSS_SHA_256,
            _builder().sign(rsa_key, hashes.SHA256(), rsa_padding=PSS),
        ),
    ]
    for key, algorithm, theirs in cases:
        pem = certificate_signing_request(
            _public_pem(key),
            algorithm,
            SUBJECT,
            lambda digest, k=key, a=algorithm: keypairs.sign_digest(k, a, digest),
        )
        ours = x509.load_pem_x509_csr(pem.encode())
        assert ours.is_signature_valid
        assert ours.tbs_certrequest_bytes == theirs.tbs_certrequest_bytes
        assert ours.signature_algorithm_oid == theirs.signature_algorithm_oid
        assert _algorithm_identifier(ours) == _algorithm_identifier(theirs)


def test_an_algorithm_that_cannot_sign_a_csr_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(UnsupportedOperation):
        certificate_signing_request(
            _public_pem(rsa_key), AsymmetricAlgorithm.RSAES_OAEP_SHA_256, SUBJECT, lambda digest: b""
        )


def test_a_signature_that_does_not_match_fails_verification(rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(65537, 2048)
    algorithm = AsymmetricAlgorithm.RSA_PKCS1_SHA_256
    pem = certificate_signing_request(
        _public_pem(rsa_key),
        algorithm,
        SUBJECT,
        lambda digest: keypairs.sign_digest(other, algorithm, digest),
    )
    assert not x509.load_pem_x509_csr(pem.encode()).is_signature_valid
