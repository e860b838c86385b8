"""The instance CA on a real SQLite store: its private key is only ever stored wrapped, two makers
keep one CA, the keyring's rewrap knows its binding, and the server certificates it issues verify for
the configured names (and only those) with a standard X.509 path validation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from openkms.clock import SystemClock
from openkms.config import load_settings
from openkms.server.runtime import build_store, upgrade_schema
from openkms.service.container import Services
from openkms.service.instance_ca import CA_KEY_PURPOSE, CA_KEY_SECRET, InstanceCa
from openkms.service.keyring_rewrap import SERVICE_SECRET_PURPOSES
from openkms.service.seal import root_of_trust
from openkms.service.service_secrets import service_secret_binding


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path / "data"})
    services = build_store(settings, clock=SystemClock(), cache_ttl=0.0)
    upgrade_schema(services)
    root = root_of_trust(settings, passphrase=None)
    services.keystore.unseal(root)
    yield services
    services.db.dispose()


def test_the_ca_private_key_is_stored_only_wrapped(store: Services, tmp_path: Path) -> None:
    ca = InstanceCa(store.db, store.keystore, store.clock)
    pem = ca.certificate_pem()
    with store.db.unit_of_work() as uow:
        wrapped = uow.identities.service_secret(CA_KEY_SECRET)
    assert wrapped is not None
    der = store.keystore.unwrap(*service_secret_binding(CA_KEY_SECRET, CA_KEY_PURPOSE), wrapped).reveal()
    key = serialization.load_der_private_key(der, password=None)
    certificate = x509.load_pem_x509_certificate(pem.encode())
    assert key.public_key().public_numbers() == certificate.public_key().public_numbers()  # type: ignore[union-attr]
    scalar = key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    store.db.dispose()  # the WAL's frames are in the files too: both are searched
    files = list((tmp_path / "data").glob("openkms.db*"))
    assert files
    for path in files:
        data = path.read_bytes()
        assert der not in data and scalar not in data and b"PRIVATE KEY" not in data, path.name
    assert SERVICE_SECRET_PURPOSES[CA_KEY_SECRET] == CA_KEY_PURPOSE  # `keyring rotate` rewraps it


def test_two_makers_keep_one_ca(store: Services) -> None:
    first = InstanceCa(store.db, store.keystore, store.clock)
    second = InstanceCa(store.db, store.keystore, store.clock)
    first._make()
    second._make()  # loses the race: its CA is dropped, not stored beside the first
    assert first.certificate_pem() == second.certificate_pem()


def test_issued_certificates_verify_for_the_configured_names_only(store: Services) -> None:
    ca = InstanceCa(store.db, store.keystore, store.clock)
    issued = ca.issue_server_certificate(("localhost", "127.0.0.1", "kms.example.internal"))
    chain = x509.load_pem_x509_certificates(issued.chain_pem)
    root = x509.load_pem_x509_certificate(ca.certificate_pem().encode())
    assert chain[1] == root
    key = serialization.load_pem_private_key(issued.private_key_pem.reveal(), password=None)
    assert key.public_key().public_numbers() == chain[0].public_key().public_numbers()  # type: ignore[union-attr]
    now = datetime.now(UTC)
    for name in (
        x509.DNSName("localhost"),
        x509.DNSName("kms.example.internal"),
        x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
    ):
        verifier = PolicyBuilder().store(Store([root])).time(now).build_server_verifier(name)
        verifier.verify(chain[0], [])
    other = PolicyBuilder().store(Store([root])).time(now).build_server_verifier(x509.DNSName("evil.example"))
    with pytest.raises(VerificationError):
        other.verify(chain[0], [])
    # Each start gets a fresh key pair from the same CA.
    again = ca.issue_server_certificate(("localhost",))
    assert again.private_key_pem != issued.private_key_pem


def test_a_sealed_start_uses_the_previous_certificate_only_if_it_names_every_configured_name(
    store: Services, tmp_path: Path
) -> None:
    from openkms.server.tls import (
        TlsError,
        check_instance_tls_files,
        instance_tls_files,
        uvicorn_tls_options,
        write_instance_tls_files,
    )

    settings = load_settings(
        environ={},
        overrides={"data_dir": tmp_path / "data", "tls_instance_ca": True, "tls_names": "localhost"},
    )
    with pytest.raises(TlsError, match="must be unsealed at start"):
        check_instance_tls_files(settings)  # nothing issued yet
    issued = InstanceCa(store.db, store.keystore, store.clock).issue_server_certificate(("localhost", "::1"))
    write_instance_tls_files(settings, issued.chain_pem, issued.private_key_pem)
    check_instance_tls_files(settings)
    wider = load_settings(
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "tls_instance_ca": True,
            "tls_names": "localhost,0:0::1,kms.lan",
        },
    )
    with pytest.raises(TlsError, match=r"does not name kms\.lan"):
        check_instance_tls_files(wider)  # ::1 written another way is covered; kms.lan is not
    cert_path, key_path = instance_tls_files(settings)
    assert uvicorn_tls_options(settings) == {
        "ssl_certfile": str(cert_path.resolve()),
        "ssl_keyfile": str(key_path.resolve()),
    }
    assert key_path.stat().st_mode & 0o777 == 0o600
