"""Backup and restore (issue 16 item 5) against live servers, through the official SDKs and the CLI.

A store on SQLite (key-file root) and one on PostgreSQL (passphrase root) are filled with symmetric
and asymmetric keys, an alias, tags and a RAM user with an access key; ciphertexts and signatures are
made; the backup is taken while requests run. Each archive is restored into a fresh SQLite data dir
and a fresh PostgreSQL database, the restored node is started with the same root of trust, and every
ciphertext made before the backup must decrypt there. A wrong root, a damaged, truncated or extended
archive, and a target that already holds a store are refused with one line and nothing written.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from openkms.secret import SecretBytes
from openkms.service.backup.archive import CHUNK_SIZE, ArchiveReader, ArchiveRefused, ArchiveWriter
from tests.conftest import new_postgres_database
from tests.support.products import Caller
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

PASSPHRASE = "backup test passphrase, not a real one"
PASSPHRASE_ENV = {"OPENKMS_SEAL": "passphrase", "OPENKMS_UNSEAL_PASSPHRASE": PASSPHRASE}
WRONG_ROOT = "the archive was not made under this root of trust"


def openkms(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openkms.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Made:
    """What a store held before its backup, and how to check it on a restored node."""

    key_id: str
    alias: str
    signer_id: str
    signer_version: str
    user_key: tuple[str, str]
    ciphertexts: dict[str, str] = field(default_factory=dict)  # blob: plaintext (base64)
    signatures: list[tuple[str, bytes]] = field(default_factory=list)  # (digest b64, signature)


def fill(server: LiveServer) -> Made:
    kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey", DKMSInstanceId=instance, Description="backed up")["KeyMetadata"]["KeyId"]
    alias = f"alias/backup-{key_id[:8]}"
    kms.call("CreateAlias", AliasName=alias, KeyId=key_id)
    kms.call("TagResource", KeyId=key_id, Tags='[{"TagKey":"team","TagValue":"ops"}]')
    signer = kms.call("CreateKey", DKMSInstanceId=instance, KeySpec="EC_P256", KeyUsage="SIGN/VERIFY")
    signer_id = signer["KeyMetadata"]["KeyId"]
    versions = kms.call("ListKeyVersions", KeyId=signer_id)["KeyVersions"]["KeyVersion"]
    ram = Caller("ram", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    ram.call("CreateUser", UserName="backup-user")
    access = ram.call("CreateAccessKey", UserName="backup-user")["AccessKey"]
    ram.call(
        "AttachPolicyToUser", UserName="backup-user", PolicyType="System", PolicyName="AliyunKMSFullAccess"
    )
    made = Made(
        key_id,
        alias,
        signer_id,
        versions[0]["KeyVersionId"],
        (access["AccessKeyId"], access["AccessKeySecret"]),
    )
    for index in range(5):
        plaintext = b64(f"secret number {index}".encode())
        made.ciphertexts[kms.call("Encrypt", KeyId=alias, Plaintext=plaintext)["CiphertextBlob"]] = plaintext
    data_key = kms.call("GenerateDataKey", KeyId=key_id, NumberOfBytes=32)
    made.ciphertexts[data_key["CiphertextBlob"]] = data_key["Plaintext"]
    for index in range(2):
        digest = b64(hashlib.sha256(f"message {index}".encode()).digest())
        value = kms.call(
            "AsymmetricSign",
            KeyId=signer_id,
            KeyVersionId=made.signer_version,
            Algorithm="ECDSA_SHA_256",
            Digest=digest,
        )["Value"]
        made.signatures.append((digest, base64.b64decode(value)))
    return made


def check(node: LiveServer, made: Made) -> None:
    """Everything made before the backup works on the restored node."""
    kms = KmsCaller("tea-acs3", node.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    for blob, plaintext in made.ciphertexts.items():
        assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == plaintext
    assert kms.call("DescribeKey", KeyId=made.alias)["KeyMetadata"]["KeyId"] == made.key_id
    tags = kms.call("ListResourceTags", KeyId=made.key_id)["Tags"]["Tag"]
    assert [(tag["TagKey"], tag["TagValue"]) for tag in tags] == [("team", "ops")]
    pem = kms.call("GetPublicKey", KeyId=made.signer_id, KeyVersionId=made.signer_version)["PublicKey"]
    public_key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    for digest, signature in made.signatures:
        public_key.verify(signature, base64.b64decode(digest), ec.ECDSA(Prehashed(hashes.SHA256())))
        verified = kms.call(
            "AsymmetricVerify",
            KeyId=made.signer_id,
            KeyVersionId=made.signer_version,
            Algorithm="ECDSA_SHA_256",
            Digest=digest,
            Value=b64(signature),
        )
        assert verified["Value"] is True
    user = KmsCaller("tea-acs3", node.endpoint, *made.user_key)
    blob, plaintext = next(iter(made.ciphertexts.items()))
    assert user.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == plaintext
    fresh = user.call("Encrypt", KeyId=made.key_id, Plaintext=b64(b"after the restore"))["CiphertextBlob"]
    assert kms.call("Decrypt", CiphertextBlob=fresh)["Plaintext"] == b64(b"after the restore")


def backup_under_load(
    server: LiveServer, archive: Path, *extra: str, env: dict[str, str] | None = None
) -> int:
    """`openkms backup` while another thread keeps encrypting and creating keys; the calls made."""
    kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    done = threading.Event()
    calls = [0]
    failures: list[BaseException] = []

    def load() -> None:
        try:
            while not done.is_set():
                key = kms.call("CreateKey", DKMSInstanceId=instance, Description="during backup")[
                    "KeyMetadata"
                ]["KeyId"]
                kms.call("Encrypt", KeyId=key, Plaintext=b64(b"during"))
                calls[0] += 2
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        result = openkms("backup", str(archive), "--data-dir", str(server.data_dir), *extra, env=env)
    finally:
        done.set()
        worker.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "backup written to" in result.stdout
    assert not failures, failures
    assert archive.stat().st_mode & 0o777 == 0o600
    return calls[0]


def start(data_dir: Path, database_url: str | None = None, env: dict[str, str] | None = None) -> LiveServer:
    return LiveServer(data_dir, database_url=database_url, extra_env=env or {}).start()


def audit_verifies(data_dir: Path, *paths: Path, env: dict[str, str] | None = None) -> str:
    result = openkms("audit", "verify", "--data-dir", str(data_dir), *map(str, paths), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stderr


def store_tables(url: str) -> list[str]:
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return [row[0] for row in rows]


# ---- a store on SQLite with a key-file root ---------------------------------------------------------


@dataclass
class Source:
    server: LiveServer
    made: Made
    archive: Path


@pytest.fixture(scope="module")
def sqlite_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    folder = tmp_path_factory.mktemp("backup-sqlite")
    config = folder / "node.toml"
    config.write_text('regions = ["cn-hangzhou"]\ncache_ttl_seconds = 1.0\n')
    server = LiveServer(folder / "data", extra_args=["--config", str(config)]).start()
    try:
        made = fill(server)
        archive = folder / "store.okb"
        assert backup_under_load(server, archive, "--with-audit", "--config", str(config)) > 0
        recorded = b"".join(path.read_bytes() for path in (folder / "data" / "audit").glob("*.jsonl"))
        assert b'"action":"BackupStore"' in recorded  # the backup is an audited operator request
        yield Source(server, made, archive)
    finally:
        server.stop()


def test_sqlite_store_restores_into_sqlite_with_its_audit_and_config(
    sqlite_source: Source, tmp_path: Path
) -> None:
    data_dir = tmp_path / "restored"
    root_key = sqlite_source.server.data_dir / "root.key"
    restored = openkms(
        "restore", str(sqlite_source.archive), "--data-dir", str(data_dir), "--root-key-file", str(root_key)
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "not restored (this node's own): audit_heads, leases" in restored.stdout
    assert (data_dir / "root.key").read_bytes() == root_key.read_bytes()
    assert (data_dir / "root.key").stat().st_mode & 0o777 == 0o600
    assert (data_dir / "openkms.toml").read_text() == 'regions = ["cn-hangzhou"]\ncache_ttl_seconds = 1.0\n'
    archived = sorted(path.name for path in (data_dir / "audit-restored").iterdir())
    assert archived and archived[0] in {
        path.name for path in (sqlite_source.server.data_dir / "audit").iterdir()
    }
    node = start(data_dir)
    try:
        check(node, sqlite_source.made)
    finally:
        node.stop()
    # The new node's audit chain starts afresh and verifies; the source's files verify with the
    # restored chain key.
    audit_verifies(data_dir)
    report = audit_verifies(data_dir, data_dir / "audit-restored")
    assert "broken" not in report


@pytest.mark.postgres
def test_sqlite_store_restores_into_postgres(sqlite_source: Source, tmp_path: Path) -> None:
    url = new_postgres_database()
    data_dir = tmp_path / "restored"
    data_dir.mkdir()
    shutil.copy2(sqlite_source.server.data_dir / "root.key", data_dir / "root.key")  # the operator's copy
    restored = openkms(
        "restore", str(sqlite_source.archive), "--data-dir", str(data_dir), "--database-url", url
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert not (data_dir / "openkms.db").exists()
    node = start(data_dir, url)
    try:
        check(node, sqlite_source.made)
    finally:
        node.stop()
    audit_verifies(data_dir, env={"OPENKMS_DATABASE_URL": url})


@pytest.mark.postgres
def test_a_wrong_root_key_is_refused_and_nothing_is_written(sqlite_source: Source, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o600)
    url = new_postgres_database()
    for args in ([], ["--database-url", url]):
        data_dir = tmp_path / f"wrong-{len(args)}"
        result = openkms(
            "restore",
            str(sqlite_source.archive),
            "--data-dir",
            str(data_dir),
            "--root-key-file",
            str(other),
            *args,
        )
        assert result.returncode == 1
        assert result.stderr.strip() == f"refused InvalidParameter: {WRONG_ROOT}"
        assert not data_dir.exists()
    assert store_tables(url) == []


def test_a_restore_without_the_root_key_file_says_what_to_bring(
    sqlite_source: Source, tmp_path: Path
) -> None:
    result = openkms("restore", str(sqlite_source.archive), "--data-dir", str(tmp_path / "new"))
    assert result.returncode == 1
    assert "made under a root key file" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("truncated", "truncated"),
        ("last-chunk-dropped", "truncated"),
        ("flipped", "fails its integrity check"),
        ("header", "fails its integrity check"),
        ("appended", "data after its final chunk"),
        ("not-an-archive", "not an OpenKMS backup archive"),
    ],
)
def test_a_damaged_archive_is_refused_and_nothing_is_written(
    sqlite_source: Source, tmp_path: Path, damage: str, reason: str
) -> None:
    content = bytearray(sqlite_source.archive.read_bytes())
    header_end = 8 + 4 + int.from_bytes(content[8:12], "big")
    if damage == "truncated":
        content = content[: (header_end + len(content)) // 2]
    elif damage == "last-chunk-dropped":
        content = content[:header_end]
    elif damage == "flipped":
        content[-20] ^= 0x01
    elif damage == "header":  # still valid JSON with the same salt and verifier, but not the header made
        at = content.index(b'"created_at":"') + len(b'"created_at":"')
        content[at] = ord("1") if content[at] != ord("1") else ord("2")
    elif damage == "appended":
        content += b"\x00" * 10
    else:
        content = bytearray(b"PK\x03\x04 not a backup at all")
    damaged = tmp_path / "damaged.okb"
    damaged.write_bytes(bytes(content))
    data_dir = tmp_path / "restored"
    root_key = sqlite_source.server.data_dir / "root.key"
    result = openkms("restore", str(damaged), "--data-dir", str(data_dir), "--root-key-file", str(root_key))
    assert result.returncode == 1, result.stdout
    assert reason in result.stderr and "Traceback" not in result.stderr
    assert not data_dir.exists()


@pytest.mark.postgres
def test_a_target_that_holds_a_store_is_refused(
    sqlite_source: Source, tmp_path: Path, postgres_url: str
) -> None:
    root_key = sqlite_source.server.data_dir / "root.key"
    busy = openkms(
        "restore",
        str(sqlite_source.archive),
        "--data-dir",
        str(sqlite_source.server.data_dir),
        "--root-key-file",
        str(root_key),
    )
    assert busy.returncode == 1 and "is not new" in busy.stderr
    data_dir = tmp_path / "new"
    # The session's PostgreSQL store (migrated by the session's server or here) is not overwritten.
    assert (
        openkms("migrate", "--data-dir", str(tmp_path / "migrate"), "--database-url", postgres_url).returncode
        == 0
    )
    taken = openkms(
        "restore", str(sqlite_source.archive), "--data-dir", str(data_dir), "--root-key-file", str(root_key),
        "--database-url", postgres_url,
    )  # fmt: skip
    assert taken.returncode == 1 and "already holds an OpenKMS store" in taken.stderr
    assert not data_dir.exists()
    again = openkms("backup", str(sqlite_source.archive), "--data-dir", str(sqlite_source.server.data_dir))
    assert again.returncode == 1 and "exists" in again.stderr and "Traceback" not in again.stderr


# ---- a store on PostgreSQL with a passphrase root ---------------------------------------------------


@pytest.mark.postgres
def test_postgres_store_with_a_passphrase_restores_into_sqlite(tmp_path: Path) -> None:
    url = new_postgres_database()
    server = LiveServer(tmp_path / "data", database_url=url, extra_env=PASSPHRASE_ENV).start()
    try:
        made = fill(server)
        archive = tmp_path / "store.okb"
        backup_under_load(server, archive, "--database-url", url, env=PASSPHRASE_ENV)
    finally:
        server.stop()
    assert PASSPHRASE.encode() not in archive.read_bytes()
    wrong = openkms(
        "restore",
        str(archive),
        "--data-dir",
        str(tmp_path / "wrong"),
        env={"OPENKMS_UNSEAL_PASSPHRASE": "not it"},
    )
    assert wrong.returncode == 1 and wrong.stderr.strip() == f"refused InvalidParameter: {WRONG_ROOT}"
    assert not (tmp_path / "wrong").exists()
    data_dir = tmp_path / "restored"
    restored = openkms("restore", str(archive), "--data-dir", str(data_dir), env=PASSPHRASE_ENV)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert (data_dir / "seal.json").read_bytes() != b"" and not (data_dir / "root.key").exists()
    node = start(data_dir, env=PASSPHRASE_ENV)
    try:
        check(node, made)
    finally:
        node.stop()
    audit_verifies(data_dir, env=PASSPHRASE_ENV)


# ---- the archive format ---------------------------------------------------------------------------


_HEADER_FIELDS = {
    "created_at": "2026-01-01T00:00:00+00:00",
    "schema_revision": "0008",
    "source_dialect": "sqlite",
    "tables": (),
    "seal": "keyfile",
    "seal_params": None,
    "with_config": False,
    "with_audit": False,
}


def _archive(root_key: SecretBytes, pieces: int) -> bytes:
    out = io.BytesIO()
    writer = ArchiveWriter(out, root_key, dict(_HEADER_FIELDS))
    for index in range(pieces):
        writer.item("data", bytes([index]) * (CHUNK_SIZE // 2))
    writer.close()
    return out.getvalue()


def _chunks(archive: bytes) -> tuple[bytes, list[bytes]]:
    at = 12 + int.from_bytes(archive[8:12], "big")
    head, chunks = archive[:at], []
    while at < len(archive):
        length = 5 + int.from_bytes(archive[at + 1 : at + 5], "big")
        chunks.append(archive[at : at + length])
        at += length
    return head, chunks


def _read(archive: bytes, root_key: SecretBytes) -> list[list[object]]:
    return list(ArchiveReader(io.BytesIO(archive), root_key).items())


def test_chunks_cannot_be_reordered_dropped_or_repeated() -> None:
    root_key = SecretBytes(os.urandom(32))
    archive = _archive(root_key, 5)
    head, chunks = _chunks(archive)
    assert len(chunks) >= 3
    assert [item[1] for item in _read(archive, root_key)] == [
        bytes([i]) * (CHUNK_SIZE // 2) for i in range(5)
    ]
    for altered in (
        [chunks[1], chunks[0], *chunks[2:]],
        [chunks[0], *chunks[2:]],
        [chunks[0], chunks[0], *chunks[1:]],
        chunks[:-1],
    ):
        with pytest.raises(ArchiveRefused):
            _read(head + b"".join(altered), root_key)
    with pytest.raises(ArchiveRefused, match="not made under this root of trust"):
        _read(archive, SecretBytes(os.urandom(32)))


def test_two_archives_of_the_same_items_share_no_ciphertext() -> None:
    root_key = SecretBytes(os.urandom(32))
    _, first = _chunks(_archive(root_key, 1))
    _, second = _chunks(_archive(root_key, 1))
    assert first[0] != second[0]


# ---- the snapshot ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_snapshot_does_not_see_writes_made_after_it_began(tmp_path: Path, dialect: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from openkms.repository.backup import snapshot
    from openkms.repository.database import Database
    from openkms.repository.migrate import upgrade_to_head
    from openkms.repository.tables import regions

    url = f"sqlite:///{tmp_path / 'store.db'}" if dialect == "sqlite" else new_postgres_database()
    db = Database(url)
    try:
        upgrade_to_head(db.engine)
        with snapshot(db) as view:
            before = view.count(regions)
            assert before == 0
            with db.unit_of_work(write=True) as uow:  # another transaction commits meanwhile
                uow.connection.execute(
                    insert(regions).values(region_id="cn-shanghai", created_at=datetime.now(UTC))
                )
            assert view.count(regions) == before
            assert [row for batch in view.rows(regions) for row in batch] == []
        with snapshot(db) as view:
            assert view.count(regions) == before + 1
            if dialect == "postgresql":
                read_only = view._c.exec_driver_sql("SHOW transaction_read_only").scalar_one()
                isolation = view._c.exec_driver_sql("SHOW transaction_isolation").scalar_one()
                assert (read_only, isolation) == ("on", "repeatable read")
    finally:
        db.dispose()


def test_an_item_larger_than_a_chunk_reads_back_whole() -> None:
    root_key = SecretBytes(os.urandom(32))
    out = io.BytesIO()
    writer = ArchiveWriter(out, root_key, dict(_HEADER_FIELDS))
    big = os.urandom(5 * CHUNK_SIZE + 7)
    writer.item("data", big)
    writer.item("end", {})
    writer.close()
    assert _read(out.getvalue(), root_key) == [["data", big], ["end", {}]]
