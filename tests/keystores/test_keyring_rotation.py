"""KEK rotation with hardware and external keys (issue 16 item 6): an external key's inner key and the
external instance's SigV4 secret are rewrapped under the new term, a hardware key's row (a reference
to its token) is left as it is, and both keep working after the old term is retired."""

from __future__ import annotations

import base64

import sqlalchemy as sa

from tests.keystores.conftest import KeyStores, extension_call
from tests.support.keyring_scan import rows_under
from tests.support.sdk import KmsCaller


def _active_term(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT max(term) FROM keyring_terms")).scalar_one())


def _material(engine: sa.Engine, key_id: str) -> bytes:
    with engine.connect() as connection:
        query = sa.text("SELECT wrapped_material FROM key_versions WHERE key_id = :k")
        return bytes(connection.execute(query, {"k": key_id}).scalar_one())


def test_rotation_rewraps_external_keys_and_instance_secrets_and_leaves_hardware_keys(
    kms: KmsCaller, key_stores: KeyStores
) -> None:
    external = extension_call(
        key_stores.server, "CreateKey", DKMSInstanceId=key_stores.external, OpenKMSExternalKeyId="ext-key-2"
    )["KeyMetadata"]
    assert isinstance(external, dict)
    external_id = str(external["KeyId"])
    hardware_id = kms.call("CreateKey", DKMSInstanceId=key_stores.hardware)["KeyMetadata"]["KeyId"]
    plaintext = base64.b64encode(b"before the rotation").decode()
    blobs = {
        key: kms.call("Encrypt", KeyId=key, Plaintext=plaintext)["CiphertextBlob"]
        for key in (external_id, hardware_id)
    }
    engine = sa.create_engine(f"sqlite:///{key_stores.server.data_dir / 'openkms.db'}")
    old = _active_term(engine)
    hardware_row = _material(engine, hardware_id)
    before = rows_under(engine, old)
    assert before.get("instances.sealed_secret")
    assert _material(engine, external_id).startswith(b"XKS1")

    rotated = key_stores.cli("keyring", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert rows_under(engine, old) == {}
    assert rows_under(engine, old + 1).keys() >= before.keys()
    assert _material(engine, hardware_id) == hardware_row
    retired = key_stores.cli("keyring", "retire", "--grace-seconds", "0")
    assert retired.returncode == 0, retired.stderr

    for key, blob in blobs.items():
        assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == plaintext, key
    # The instance's secret is unsealed again for a health check of the proxy (SigV4 with it).
    checked = key_stores.cli("instance", "update", key_stores.external, "--timeout", "2")
    assert checked.returncode == 0, checked.stderr
    engine.dispose()
