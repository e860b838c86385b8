"""KEK rotation and passphrase change (issue 16 item 6).

In-process: the keystore's rewrap keeps each row's binding and refuses tampered or moved rows; a
refresh picks up a rotation and a retirement made by another process; every crash window of a
passphrase change leaves exactly one passphrase that unseals.

Live, on SQLite and PostgreSQL: a server keeps answering the official SDK while `openkms keyring rotate`
runs in another process; the rotation is killed mid-rewrap (SIGKILL), `keyring status` shows the
progress, retirement is refused while rows remain, `keyring rewrap` finishes it, a scan of every binary
column finds nothing under the old term, the term is retired, and ciphertexts made before the rotation
decrypt after retirement and after a restart. A passphrase-sealed server changes its passphrase: the
new one unseals after a restart, the old one is refused, and a wrong current passphrase changes nothing.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from openkms.cli.main import app
from openkms.domain.keyring import WrappedKind
from openkms.errors import Conflict, InvalidArgument, RootOfTrustError, StorageIntegrityError
from openkms.keystore import Keystore, PassphraseRoot, term_of, term_prefix
from openkms.repository import tables
from openkms.repository.database import Database
from openkms.repository.keyring import DatabaseKeyringStore
from openkms.repository.migrate import upgrade_to_head
from openkms.repository.wrapped_rows import WrappedRowRepository
from openkms.secret import SecretBytes
from openkms.service.identities import secret_binding
from openkms.service.keyring_rewrap import KeyringRotation
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot
from openkms.types import AccessKeyId, AccountId
from tests.conftest import new_postgres_database
from tests.support.keyring_scan import rows_under
from tests.support.products import Caller
from tests.support.sdk import KmsCaller
from tests.support.server import ACCESS_KEY_ID, ACCESS_KEY_SECRET, LiveServer

BINDING = ("key-1", "version-1", "Aliyun_AES_256")
SMALL_N = 2**14  # the smallest scrypt cost the parameters file accepts: fast tests


# ---- in process: the keystore ----------------------------------------------------------------------


def _keystore(store: MemoryKeyringStore, root: StaticRoot) -> Keystore:
    keystore = Keystore(root, store)
    keystore.unseal()
    return keystore


def test_rewrap_moves_a_row_to_the_active_term_and_keeps_its_binding() -> None:
    store, root = MemoryKeyringStore(), StaticRoot()
    keystore = _keystore(store, root)
    wrapped = keystore.wrap(*BINDING, SecretBytes(b"k" * 32))
    assert term_of(wrapped) == 1
    assert keystore.rotate_keyring() == 2
    moved = keystore.rewrap(*BINDING, wrapped)
    assert term_of(moved) == 2 and moved != wrapped
    assert keystore.unwrap(*BINDING, moved).reveal() == b"k" * 32
    assert keystore.rewrap(*BINDING, moved) == moved  # already there: unchanged
    with pytest.raises(StorageIntegrityError):  # the binding is the row's own, not any other
        keystore.unwrap("key-1", "version-2", "Aliyun_AES_256", moved)


@pytest.mark.parametrize("where", [0, 1, 5, 20, -1])
def test_rewrap_refuses_a_tampered_row(where: int) -> None:
    keystore = _keystore(MemoryKeyringStore(), StaticRoot())
    wrapped = bytearray(keystore.wrap(*BINDING, SecretBytes(b"k" * 32)))
    keystore.rotate_keyring()
    wrapped[where] ^= 0x01
    with pytest.raises(StorageIntegrityError):
        keystore.rewrap(*BINDING, bytes(wrapped))


def test_rewrap_refuses_a_row_moved_to_another_binding() -> None:
    keystore = _keystore(MemoryKeyringStore(), StaticRoot())
    wrapped = keystore.wrap(*BINDING, SecretBytes(b"k" * 32))
    keystore.rotate_keyring()
    with pytest.raises(StorageIntegrityError):
        keystore.rewrap("key-2", "version-1", "Aliyun_AES_256", wrapped)


def test_another_process_sees_a_rotation_and_a_retirement_on_refresh() -> None:
    store, root = MemoryKeyringStore(), StaticRoot()
    rotating, other = _keystore(store, root), _keystore(store, root)
    old = other.wrap(*BINDING, SecretBytes(b"k" * 32))
    rotating.rotate_keyring()
    other.refresh()
    assert other.active_term == 2 and term_of(other.wrap(*BINDING, SecretBytes(b"k" * 32))) == 2
    moved = rotating.rewrap(*BINDING, old)
    del store.terms[1]  # retired by the rotating process
    other.refresh()
    assert other.terms == [2]
    assert other.unwrap(*BINDING, moved).reveal() == b"k" * 32
    with pytest.raises(StorageIntegrityError):
        other.unwrap(*BINDING, old)


# ---- in process: the rewrap over a real SQLite store -------------------------------------------------


def _store(url: str, root: StaticRoot | None = None) -> tuple[Database, Keystore]:
    db = Database(url)
    upgrade_to_head(db.engine)
    keystore = Keystore(root or StaticRoot(), DatabaseKeyringStore(db.engine))
    keystore.unseal()
    return db, keystore


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[Database, Keystore]]:
    db, keystore = _store(f"sqlite:///{tmp_path / 'openkms.db'}")
    yield db, keystore
    db.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Keystore]]:
    url = new_postgres_database() if request.param == "postgres" else f"sqlite:///{tmp_path / 'openkms.db'}"
    db, keystore = _store(url)
    yield db, keystore
    db.dispose()


def _add_access_key(db: Database, keystore: Keystore, access_key_id: str, *, tamper: bool = False) -> None:
    wrapped = bytearray(keystore.wrap(*secret_binding(AccessKeyId(access_key_id)), SecretBytes(b"secret")))
    if tamper:
        wrapped[-1] ^= 0x01
    now = datetime.now(UTC)
    with db.unit_of_work(write=True) as uow:
        if not uow.accounts.account_ids():
            uow.accounts.add_account(AccountId("1000000000000001"), now)
        uow.accounts.add_access_key(
            AccessKeyId(access_key_id), AccountId("1000000000000001"), "root", bytes(wrapped), now
        )


def test_a_wrap_inside_a_write_transaction_picks_up_a_rotation_made_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh before a wrap reads on its own connection without the write lock (SQLite: BEGIN,
    not BEGIN IMMEDIATE), so a wrap inside a unit of work that holds it does not wait for itself."""
    root = StaticRoot()
    db, keystore = _store(f"sqlite:///{tmp_path / 'openkms.db'}", root)
    elsewhere = Keystore(root, DatabaseKeyringStore(db.engine))
    elsewhere.unseal()
    elsewhere.rotate_keyring()
    monkeypatch.setattr("openkms.keystore.KEYRING_REFRESH_SECONDS", 0.0)
    with db.unit_of_work(write=True):
        wrapped = keystore.wrap(*BINDING, SecretBytes(b"k" * 32))
    assert term_of(wrapped) == 2
    db.dispose()


def test_a_row_changed_or_deleted_since_it_was_read_is_not_overwritten(
    any_store: tuple[Database, Keystore],
) -> None:
    db, keystore = any_store
    for n in range(4):
        _add_access_key(db, keystore, f"LTAIcas{n:011d}")
    keystore.rotate_keyring()
    with db.unit_of_work() as uow:
        read = WrappedRowRepository(uow.connection).not_under(
            WrappedKind.ACCESS_KEY_SECRET, term_prefix(2), "", 10
        )
    assert [row.pk for row in read] == [f"LTAIcas{n:011d}" for n in range(4)]
    changes = [(row, keystore.rewrap(*secret_binding(AccessKeyId(row.pk)), row.stored)) for row in read]
    concurrent = keystore.wrap(*secret_binding(AccessKeyId(read[1].pk)), SecretBytes(b"new secret"))
    with db.unit_of_work(write=True) as uow:
        uow.connection.execute(
            sa.update(tables.access_keys)
            .where(tables.access_keys.c.access_key_id == read[1].pk)
            .values(wrapped_secret=concurrent)
        )
        uow.connection.execute(
            sa.delete(tables.access_keys).where(tables.access_keys.c.access_key_id == read[2].pk)
        )
    with db.unit_of_work(write=True) as uow:
        assert WrappedRowRepository(uow.connection).replace(WrappedKind.ACCESS_KEY_SECRET, changes) == 2
    with db.unit_of_work() as uow:
        query = sa.select(tables.access_keys.c.access_key_id, tables.access_keys.c.wrapped_secret)
        stored = {str(pk): bytes(value) for pk, value in uow.connection.execute(query)}
    assert bytes(stored[read[1].pk]) == concurrent and read[2].pk not in stored
    assert bytes(stored[read[0].pk]) == changes[0][1] and bytes(stored[read[3].pk]) == changes[3][1]


def test_a_tampered_row_is_not_rewrapped_and_keeps_its_term_from_retiring(
    sqlite_store: tuple[Database, Keystore],
) -> None:
    db, keystore = sqlite_store
    _add_access_key(db, keystore, "LTAIgood0000000001")
    _add_access_key(db, keystore, "LTAItampered000001", tamper=True)
    rotation = KeyringRotation(db, keystore, batch_size=1)
    rotation.rotate()
    result = rotation.run_until_done()
    assert (result.rewrapped, result.failed) == (1, 1)
    status = rotation.status()
    assert status.remaining == 1
    assert {t.term: t.rows for t in status.terms} == {
        1: {WrappedKind.ACCESS_KEY_SECRET: 1},
        2: {WrappedKind.ACCESS_KEY_SECRET: 1},
    }
    with pytest.raises(Conflict, match="still under term 1"):
        rotation.retire(1, grace_seconds=0)
    assert rotation.retire(grace_seconds=0) == []  # every old term with no rows: none


def test_the_periodic_step_rewraps_after_a_rotation_then_stays_idle(
    sqlite_store: tuple[Database, Keystore],
) -> None:
    db, keystore = sqlite_store
    for n in range(5):
        _add_access_key(db, keystore, f"LTAIperiodic{n:06d}")
    rotation = KeyringRotation(db, keystore, batch_size=2)
    assert rotation.run_step() == 0  # nothing to move under term 1
    rotation.rotate()
    assert rotation.run_step(max_batches=3) == 2  # key material, import tokens, then 2 access keys
    assert rotation.run_step() == 3
    assert rotation.status().remaining == 0
    assert rotation.run_step() == 0  # the pass that found nothing settles the term
    _add_access_key(db, keystore, "LTAIlate0000000001")  # a process that wrapped under term 2
    assert rotation.run_step() == 0 and rotation.status().remaining == 0


def test_retirement_refuses_the_active_term_an_unknown_term_and_a_recent_rotation(
    sqlite_store: tuple[Database, Keystore],
) -> None:
    db, keystore = sqlite_store
    clock = [datetime.now(UTC)]
    rotation = KeyringRotation(db, keystore, now=lambda: clock[0])
    rotation.rotate()
    with pytest.raises(InvalidArgument, match="active term"):
        rotation.retire(2, grace_seconds=0)
    with pytest.raises(InvalidArgument, match="not a live term"):
        rotation.retire(7, grace_seconds=0)
    with pytest.raises(Conflict, match="less than 60 s ago"):
        rotation.retire(1)
    clock[0] += timedelta(seconds=61)
    assert rotation.retire(1) == [1]
    assert [t.term for t in rotation.status().retired] == [1]


def test_status_prints_terms_rows_by_kind_and_retired_terms(
    sqlite_store: tuple[Database, Keystore], tmp_path: Path
) -> None:
    db, keystore = sqlite_store
    _add_access_key(db, keystore, "LTAIstatus00000001")
    rotation = KeyringRotation(db, keystore)
    rotation.rotate()
    rotation.run_until_done()
    rotation.retire(grace_seconds=0)
    _add_access_key(db, keystore, "LTAIstatus00000002")
    printed = CliRunner().invoke(app, ["keyring", "status", "--data-dir", str(tmp_path)])
    assert printed.exit_code == 0, printed.output
    lines = printed.stdout.splitlines()
    assert "keyring: active term 2" in lines[0]
    cells = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
        for line in lines
        if line.startswith("│")
    }
    # state, created, key-material, import-wrapping-key, access-key-secret, instance-secret, ...
    assert cells["2"][0] == "active" and cells["2"][4] == "2" and cells["2"][-1] == "2"
    assert cells["1"][0].startswith("retired") and cells["1"][-1] == "-"
    assert "rows left under older terms: 0" in printed.stdout


def test_change_passphrase_is_refused_for_a_key_file_store(tmp_path: Path) -> None:
    printed = CliRunner().invoke(app, ["keyring", "change-passphrase", "--data-dir", str(tmp_path)])
    assert printed.exit_code == 1
    assert "key file, not a passphrase" in printed.output


# ---- in process: every crash window of a passphrase change --------------------------------------------


def _sealed_with(tmp_path: Path, passphrase: str) -> tuple[MemoryKeyringStore, Path]:
    store, params = MemoryKeyringStore(), tmp_path / "seal.json"
    Keystore(PassphraseRoot(params, SecretBytes(passphrase.encode()), n=SMALL_N), store).unseal()
    return store, params


def _opens(store: MemoryKeyringStore, params: Path, passphrase: str) -> bool:
    keystore = Keystore(None, store)
    try:
        keystore.unseal(PassphraseRoot(params, SecretBytes(passphrase.encode()), n=SMALL_N))
    except RootOfTrustError:
        return False
    return True


def _change_until(tmp_path: Path, step: str) -> tuple[MemoryKeyringStore, Path]:
    """A passphrase change from "old" to "new" that stops after `step` (a crash there)."""
    store, params = _sealed_with(tmp_path, "old")
    root = PassphraseRoot(params, SecretBytes(b"old"), n=SMALL_N)
    keystore = Keystore(root, store)
    keystore.unseal()
    new_key = root.prepare_change(SecretBytes(b"new"))
    if step == "pending written":
        return store, params
    for term, wrapped in keystore.rewrapped_keyring(new_key, store.load_terms()):
        store.terms[term] = wrapped
    if step == "keyring committed":
        return store, params
    root.commit_pending()
    return store, params


@pytest.mark.parametrize(
    ("step", "works", "refused"),
    [
        ("pending written", "old", "new"),
        ("keyring committed", "new", "old"),
        ("renamed", "new", "old"),
    ],
)
def test_a_crash_in_a_passphrase_change_leaves_one_passphrase_that_unseals(
    tmp_path: Path, step: str, works: str, refused: str
) -> None:
    store, params = _change_until(tmp_path, step)
    assert not _opens(store, params, refused)
    assert _opens(store, params, works)
    if works == "new":  # the unseal finished the change: the new parameters are the file now
        assert not params.with_name("seal.json.new").exists()
        assert _opens(store, params, "new")


def test_unreadable_pending_parameters_are_ignored_by_unseal(tmp_path: Path) -> None:
    store, params = _sealed_with(tmp_path, "old")
    pending = params.with_name("seal.json.new")
    pending.write_text("{not json")
    pending.chmod(0o600)
    assert _opens(store, params, "old")


# ---- live: rotation on a serving server ----------------------------------------------------------------


def _cli(
    server: LiveServer, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "openkms.cli", *args, "--data-dir", str(server.data_dir)]
    if server.database_url:
        command += ["--database-url", server.database_url]
    return subprocess.run(
        command, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300, check=False
    )


def _status(server: LiveServer) -> dict[str, Any]:
    printed = _cli(server, "keyring", "status", "--json")
    assert printed.returncode == 0, printed.stderr
    document: dict[str, Any] = json.loads(printed.stdout)
    return document


def _terms(status: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {term["Term"]: term for term in status["Terms"]}


def _engine(server: LiveServer) -> sa.Engine:
    return sa.create_engine(server.database_url or f"sqlite:///{server.data_dir / 'openkms.db'}")


def _progress(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(sa.text("SELECT rewrapped FROM keyring_rewrap WHERE id = 1")).scalar_one()
        )


class _Load:
    """Encrypt and Decrypt in a loop on another thread, counting calls and keeping the first error."""

    def __init__(self, kms: KmsCaller, key_id: str) -> None:
        self._kms, self._key_id = kms, key_id
        self.calls = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                plain = base64.b64encode(os.urandom(16)).decode()
                blob = self._kms.call("Encrypt", KeyId=self._key_id, Plaintext=plain)["CiphertextBlob"]
                assert self._kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == plain
                self.calls += 1
            except BaseException as exc:
                self.error = exc
                return


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    database_url = new_postgres_database() if request.param == "postgres" else None
    server = LiveServer(tmp_path / "data", database_url=database_url).start()
    yield server
    server.stop()


KEYS_FOR_THE_CRASH = 40  # enough rows that a rewrap of one row per batch is still running when killed


@pytest.mark.slow
def test_rotation_rewraps_everything_while_serving_survives_a_kill_and_retires_the_old_term(
    fresh_server: LiveServer,
) -> None:
    server = fresh_server
    kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    ram = Caller("ram", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    # One row of each kind: key material (symmetric and a key pair), an import token's wrapping key,
    # access key secrets (root and a RAM user's), server secrets (audit chain, STS and import keys).
    instance = kms.call("ListKmsInstances")["KmsInstances"]["KmsInstance"][0]["KmsInstanceId"]
    key_id = kms.call("CreateKey")["KeyMetadata"]["KeyId"]  # the region's customer master key
    pair = kms.call("CreateKey", DKMSInstanceId=instance, KeySpec="EC_P256", KeyUsage="SIGN/VERIFY")
    pair = pair["KeyMetadata"]["KeyId"]
    external = kms.call("CreateKey", DKMSInstanceId=instance, Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    kms.call(
        "GetParametersForImport",
        KeyId=external,
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    user = f"rotation-{uuid.uuid4().hex[:8]}"
    ram.call("CreateUser", UserName=user)
    user_key = ram.call("CreateAccessKey", UserName=user)["AccessKey"]
    for _ in range(KEYS_FOR_THE_CRASH):
        kms.call("CreateKey", DKMSInstanceId=instance)
    plaintext = base64.b64encode(b"made before the rotation").decode()
    blob = kms.call("Encrypt", KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
    engine = _engine(server)
    before = rows_under(engine, 1)
    for column in (
        "key_versions.wrapped_material",
        "import_tokens.wrapped_private_key",
        "access_keys.wrapped_secret",
        "service_secrets.wrapped_value",
    ):
        assert before.get(column), f"no row of {column} to rewrap: {before}"

    with _Load(kms, key_id) as load:
        # The rotation, one row per batch, killed (SIGKILL) as soon as it has moved a row.
        command = [sys.executable, "-m", "openkms.cli", "keyring", "rotate", "--batch-size", "1"]
        command += ["--data-dir", str(server.data_dir)]
        if server.database_url:
            command += ["--database-url", server.database_url]
        rotation = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while _progress(engine) == 0 and rotation.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        rotation.send_signal(signal.SIGKILL)
        rotation.wait()

        midway = _status(server)
        assert midway["ActiveTerm"] == 2
        assert midway["Rewrapped"] > 0 and midway["Remaining"] > 0, midway
        assert _terms(midway)[1]["Total"] == midway["Remaining"]
        refused = _cli(server, "keyring", "retire", "1", "--grace-seconds", "0")
        assert refused.returncode == 1 and "still under term 1" in refused.stderr

        finished = _cli(server, "keyring", "rewrap", "--batch-size", "7")
        assert finished.returncode == 0, finished.stderr
        assert "0 left under older terms" in finished.stderr
        calls_during = load.calls
    assert load.error is None, load.error
    assert calls_during > 0

    assert rows_under(engine, 1) == {}
    assert rows_under(engine, 2).keys() >= before.keys()
    assert _cli(server, "keyring", "retire", "--grace-seconds", "0").returncode == 0
    retired = _status(server)
    assert retired["Remaining"] == 0 and retired["Unreadable"] == 0
    assert [t["Term"] for t in retired["Terms"]] == [2]
    assert _terms(retired)[2]["Total"] >= sum(before.values())
    assert [t["Term"] for t in retired["RetiredTerms"]] == [1]
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT term FROM keyring_terms")).scalars().all() == [2]
    engine.dispose()

    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == plaintext
    server.stop()
    server.start()  # every secret is unwrapped again, under term 2 only
    kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == plaintext
    digest = base64.b64encode(os.urandom(32)).decode()
    signed = kms.call(
        "AsymmetricSign",
        KeyId=pair,
        KeyVersionId=_version(kms, pair),
        Algorithm="ECDSA_SHA_256",
        Digest=digest,
    )
    assert signed["Value"]
    as_user = Caller("sts", server.endpoint, user_key["AccessKeyId"], user_key["AccessKeySecret"])
    assert as_user.call("GetCallerIdentity")["IdentityType"] == "RAMUser"
    new_key = kms.call("CreateKey", DKMSInstanceId=instance)["KeyMetadata"]["KeyId"]
    assert kms.call("Encrypt", KeyId=new_key, Plaintext=plaintext)["CiphertextBlob"]


def _version(kms: KmsCaller, key_id: str) -> str:
    versions = kms.call("ListKeyVersions", KeyId=key_id)["KeyVersions"]["KeyVersion"]
    return str(versions[0]["KeyVersionId"])


# ---- live: passphrase change ----------------------------------------------------------------------------

OLD, NEW = "old passphrase for the rotation test", "new passphrase for the rotation test"
SEALED = {"OPENKMS_SEAL": "passphrase"}


def _unseal(server: LiveServer, passphrase: str) -> subprocess.CompletedProcess[str]:
    return _cli(server, "unseal", env={**SEALED, "OPENKMS_UNSEAL_PASSPHRASE": passphrase})


def test_passphrase_change_then_only_the_new_passphrase_unseals(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", extra_env=SEALED).start(wait_ready=False)
    try:
        assert _unseal(server, OLD).returncode == 0
        server.wait()
        kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        key_id = kms.call("CreateKey")["KeyMetadata"]["KeyId"]
        plaintext = base64.b64encode(b"sealed by a passphrase").decode()
        blob = kms.call("Encrypt", KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
        params = server.data_dir / "seal.json"
        engine = _engine(server)
        with engine.connect() as connection:
            keyring_before = connection.execute(sa.text("SELECT term, wrapped_kek FROM keyring_terms")).all()
        params_before = params.read_bytes()

        wrong = _cli(
            server,
            "keyring",
            "change-passphrase",
            env={**SEALED, "OPENKMS_UNSEAL_PASSPHRASE": "not the passphrase", "OPENKMS_NEW_PASSPHRASE": NEW},
        )
        assert wrong.returncode == 1 and "refused" in wrong.stderr and "wrong passphrase" in wrong.stderr
        assert params.read_bytes() == params_before
        assert not params.with_name("seal.json.new").exists()
        with engine.connect() as connection:
            assert (
                connection.execute(sa.text("SELECT term, wrapped_kek FROM keyring_terms")).all()
                == keyring_before
            )

        changed = _cli(
            server,
            "keyring",
            "change-passphrase",
            env={**SEALED, "OPENKMS_UNSEAL_PASSPHRASE": OLD, "OPENKMS_NEW_PASSPHRASE": NEW},
        )
        assert changed.returncode == 0, changed.stderr
        assert OLD not in changed.stdout + changed.stderr and NEW not in changed.stdout + changed.stderr
        assert params.read_bytes() != params_before
        with engine.connect() as connection:
            keyring_after = connection.execute(sa.text("SELECT term, wrapped_kek FROM keyring_terms")).all()
        assert [t for t, _ in keyring_after] == [t for t, _ in keyring_before]
        assert all(a != b for (_, a), (_, b) in zip(keyring_after, keyring_before, strict=True))
        engine.dispose()
        # The running server keeps serving with the KEKs it holds.
        assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == plaintext

        server.stop()
        server.start(wait_ready=False)
        old = _unseal(server, OLD)
        assert old.returncode == 1 and "wrong passphrase" in old.stdout
        assert _unseal(server, NEW).returncode == 0
        server.wait()
        assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == plaintext
    finally:
        server.stop()


def test_the_jobs_leader_finishes_a_rewrap_nobody_ran(tmp_path: Path) -> None:
    """`keyring rotate --no-rewrap` (or a rotate whose process was stopped): the server's jobs leader
    moves the rows in the background, a few batches a run."""
    server = LiveServer(tmp_path / "data", extra_env={"OPENKMS_JOB_INTERVAL_SECONDS": "1"}).start()
    try:
        kms = KmsCaller("tea-acs3", server.endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        key_id = kms.call("CreateKey")["KeyMetadata"]["KeyId"]
        blob = kms.call("Encrypt", KeyId=key_id, Plaintext="aGk=")["CiphertextBlob"]
        engine = _engine(server)
        assert rows_under(engine, 1)
        rotated = _cli(server, "keyring", "rotate", "--no-rewrap")
        assert rotated.returncode == 0, rotated.stderr
        deadline = time.monotonic() + 60
        while rows_under(engine, 1) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert rows_under(engine, 1) == {}
        assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == "aGk="
        engine.dispose()
    finally:
        server.stop()
