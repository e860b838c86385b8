"""The deployment's instance CA: made once per store, it issues the server certificate for the names
the operator configures, and its certificate is what clients trust (GetKmsInstance's
CaCertificateChainPem, `openkms instance ca --out ca.pem`).

Its private key (EC P-256, PKCS#8) is a service secret wrapped by the keystore and bound to its
name and purpose, written in the same transaction as the certificate row; the first process to need
the CA makes it, and one that loses the race reads the winner's. Never returns or logs the CA's
private key; a server certificate's private key leaves only as SecretBytes, for the TLS files.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.exc import IntegrityError

from openkms.clock import Clock
from openkms.keystore import Keystore
from openkms.repository.database import Database
from openkms.secret import SecretBytes
from openkms.service.service_secrets import service_secret_binding

__all__ = [
    "CA_KEY_PURPOSE",
    "CA_KEY_SECRET",
    "InstanceCa",
    "ServerCertificate",
    "certificate_names",
]

CA_KEY_SECRET: Final = "instance-ca-key"  # noqa: S105 - the name of a server secret, not a secret
CA_KEY_PURPOSE: Final = "InstanceCaKey"
CA_VALIDITY: Final = timedelta(days=3650)
# A server certificate is issued again at every start of `serve --tls-instance-ca`; this is how long
# one lasts if the server is never restarted (the browsers' limit, which clients do not enforce for a
# private CA, but a year is a sound rotation).
SERVER_VALIDITY: Final = timedelta(days=397)
_BACKDATE: Final = timedelta(minutes=5)  # clients whose clocks run a little behind accept it at once


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """A server certificate chain (PEM: the certificate, then the CA's) and its private key."""

    chain_pem: bytes
    private_key_pem: SecretBytes
    not_after: datetime


def certificate_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    """Each name as a subjectAltName entry: an IP address, or else a DNS name."""
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


class InstanceCa:
    def __init__(self, db: Database, keystore: Keystore, clock: Clock) -> None:
        self._db = db
        self._keystore = keystore
        self._clock = clock

    def certificate_pem(self) -> str:
        """The CA's certificate (PEM), made now if the store has none (needs the keystore unsealed)."""
        with self._db.unit_of_work() as uow:
            found = uow.access_points.ca_certificate()
        if found is not None:
            return found
        self._make()
        with self._db.unit_of_work() as uow:
            made = uow.access_points.ca_certificate()
        if made is None:  # pragma: no cover - _make committed it or read another process's
            raise RuntimeError("the instance CA was not stored")
        return made

    def chain_pem(self) -> str:
        """What a client trusts: the CA's certificate (the chain has no intermediate)."""
        return self.certificate_pem()

    def issue_server_certificate(self, names: tuple[str, ...]) -> ServerCertificate:
        """A fresh server key pair and certificate for `names`, signed by the CA."""
        ca_pem = self.certificate_pem().encode("ascii")
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
        ca_key = self._ca_key()
        now = self._clock.now()
        key = ec.generate_private_key(ec.SECP256R1())
        not_after = min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(certificate_names(names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        chain = certificate.public_bytes(serialization.Encoding.PEM) + ca_pem
        return ServerCertificate(chain, SecretBytes(key_pem), not_after)

    def _ca_key(self) -> ec.EllipticCurvePrivateKey:
        with self._db.unit_of_work() as uow:
            wrapped = uow.identities.service_secret(CA_KEY_SECRET)
        if wrapped is None:  # pragma: no cover - certificate_pem() made it first
            raise RuntimeError("the instance CA has no key")
        der = self._keystore.unwrap(*service_secret_binding(CA_KEY_SECRET, CA_KEY_PURPOSE), wrapped)
        key = serialization.load_der_private_key(der.reveal(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):  # pragma: no cover - only EC keys are made
            raise TypeError("the instance CA key is not an EC key")
        return key

    def _make(self) -> None:
        """Make the CA and store its certificate and wrapped key in one transaction (another
        process's, if it made one first, is kept)."""
        now = self._clock.now()
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenKMS"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"OpenKMS instance CA {os.urandom(4).hex()}"),
            ]
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        der = SecretBytes(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        wrapped = self._keystore.wrap(*service_secret_binding(CA_KEY_SECRET, CA_KEY_PURPOSE), der)
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        try:
            with self._db.unit_of_work(write=True) as uow:
                uow.identities.add_service_secret(CA_KEY_SECRET, wrapped, now)
                uow.access_points.add_ca_certificate(pem, now)
        except IntegrityError:
            return  # another process made the CA first: its certificate and key are the ones kept


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )
