"""Storage is untrusted: no plaintext key material, data key, plaintext or secret anywhere in the
data directory after a workload (P6), and a wrapped row moved to another key fails closed (P7)."""

from __future__ import annotations

import base64
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from openkms.keystore import KeyFileRoot, Keystore
from openkms.repository.keyring import DatabaseKeyringStore
from tests.support.sdk import KmsCaller, KmsError
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data").start()
    yield server
    server.stop()


def _kms(server: LiveServer) -> KmsCaller:
    return KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)


def _version_material(data_dir: Path) -> list[bytes]:
    """Unwrap every key version's material with the data dir's own root key (the test's privilege)."""
    engine = create_engine(f"sqlite:///{data_dir / 'openkms.db'}")
    keystore = Keystore(KeyFileRoot(data_dir / "root.key"), DatabaseKeyringStore(engine))
    keystore.unseal()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT v.key_id, v.version_id, k.spec, v.wrapped_material FROM key_versions v "
                "JOIN keys k ON k.key_id = v.key_id"
            )
        ).all()
    material = [
        keystore.unwrap(r.key_id, r.version_id, r.spec, bytes(r.wrapped_material)).reveal() for r in rows
    ]
    engine.dispose()
    return material


def _forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.b64encode(secret)]


def test_no_secret_reaches_the_data_directory(live: LiveServer) -> None:
    kms = _kms(live)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    canaries: list[bytes] = [ACCESS_KEY_SECRET.encode()]
    for _ in range(3):
        key_id = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
        plaintext = "canary-" + secrets.token_hex(16)
        canaries.append(plaintext.encode())
        blob = kms.call("Encrypt", KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
        assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == plaintext
        data_key = kms.call("GenerateDataKey", KeyId=key_id)["Plaintext"]
        canaries += [data_key.encode(), base64.b64decode(data_key)]
    live.stop()

    material = _version_material(live.data_dir)
    assert len(material) == 3 and all(len(m) == 32 for m in material)
    needles = [form for secret in [*canaries, *material] for form in _forms(secret)]
    scanned = [p for p in live.data_dir.rglob("*") if p.is_file() and p.name != "root.key"]
    assert any(p.name.endswith(".jsonl") for p in scanned), "the audit log should be among the scanned files"
    assert any(p.name == "openkms.db" for p in scanned)
    for path in [*scanned, live.log_path]:
        assert path is not None
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"secret bytes found in {path.name}"


def test_a_wrapped_row_moved_to_another_key_fails_closed(live: LiveServer) -> None:
    kms = _kms(live)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    first = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]
    second = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]
    blob = kms.call("Encrypt", KeyId=first["KeyId"], Plaintext="moved")["CiphertextBlob"]
    live.stop()

    with sqlite3.connect(live.data_dir / "openkms.db") as db:
        a = db.execute(
            "SELECT wrapped_material FROM key_versions WHERE version_id=?", (first["PrimaryKeyVersion"],)
        ).fetchone()[0]
        b = db.execute(
            "SELECT wrapped_material FROM key_versions WHERE version_id=?", (second["PrimaryKeyVersion"],)
        ).fetchone()[0]
        db.execute(
            "UPDATE key_versions SET wrapped_material=? WHERE version_id=?", (b, first["PrimaryKeyVersion"])
        )
        db.execute(
            "UPDATE key_versions SET wrapped_material=? WHERE version_id=?", (a, second["PrimaryKeyVersion"])
        )

    live.start()
    for action, params in [
        ("Decrypt", {"CiphertextBlob": blob}),
        ("Encrypt", {"KeyId": first["KeyId"], "Plaintext": "x"}),
        ("Encrypt", {"KeyId": second["KeyId"], "Plaintext": "x"}),
    ]:
        with pytest.raises(KmsError) as caught:
            kms.call(action, **params)
        assert (caught.value.code, caught.value.status) == ("InternalFailure", 500)
        assert "moved" not in caught.value.message
