"""Keystore: roots of trust, the KEK keyring, envelope encryption of material, and the seal."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import cast

import pytest

from openkms.errors import RootOfTrustError, Sealed, StorageIntegrityError
from openkms.keystore import (
    KeyFileRoot,
    Keyring,
    Keystore,
    PassphraseRoot,
    TermExists,
)
from openkms.keystore.envelope import unwrap_material, wrap_material
from openkms.keystore.keyring import WRONG_ROOT_MESSAGE
from openkms.keystore.root import SCRYPT_N
from openkms.secret import SecretBytes
from openkms.testing.keyring import MemoryKeyringStore, StaticRoot
from openkms.types import KeyId, KeySpec, KeyVersionId

KEY = KeyId("key-0b9f7a3c-5d1e-4f2a-9c8b-7e6d5c4b3a21")
OTHER_KEY = KeyId("key-1c0a8b4d-6e2f-4a3b-8d9c-8f7e6d5c4b32")
VERSION = KeyVersionId("2ab1a983-7072-4bbc-a582-584b5bd8e88a")
OTHER_VERSION = KeyVersionId("3bc2ba94-8183-4ccd-b693-695c6ce9f99b")
SPEC = KeySpec.ALIYUN_AES_256
# KeySpec has one symmetric member today; a spec string of another kind stands in for "another spec".
OTHER_SPEC = cast(KeySpec, "Aliyun_SM4")
MATERIAL = SecretBytes(bytes(range(32)))
FAST_N = 2**14  # the smallest scrypt cost the parameters file accepts; keeps these tests quick


def _assert_no_secret(text: str, secret: bytes) -> None:
    assert secret.hex() not in text.lower()
    assert repr(secret)[2:-1] not in text
    assert "reveal" not in text


@pytest.fixture
def store() -> MemoryKeyringStore:
    return MemoryKeyringStore()


@pytest.fixture
def keystore(store: MemoryKeyringStore) -> Keystore:
    keystore = Keystore(StaticRoot(), store)
    keystore.unseal()
    return keystore


# --- key-file root -------------------------------------------------------------------------------


def test_key_file_create_writes_32_bytes_mode_0600(tmp_path: Path) -> None:
    root = KeyFileRoot(tmp_path / "root.key")
    assert not root.exists()
    root.create()
    assert stat.S_IMODE((tmp_path / "root.key").stat().st_mode) == 0o600
    assert len(root.load()) == 32
    assert root.load() == root.load()


def test_key_file_create_refuses_to_overwrite(tmp_path: Path) -> None:
    root = KeyFileRoot(tmp_path / "root.key")
    root.create()
    before = (tmp_path / "root.key").read_bytes()
    with pytest.raises(RootOfTrustError, match="already exists"):
        root.create()
    assert (tmp_path / "root.key").read_bytes() == before


def test_key_file_missing_is_refused_unless_asked_to_create(tmp_path: Path) -> None:
    with pytest.raises(RootOfTrustError, match="does not exist"):
        KeyFileRoot(tmp_path / "root.key").load()
    assert not (tmp_path / "root.key").exists()
    key = KeyFileRoot(tmp_path / "root.key", create_if_missing=True).load()
    assert len(key) == 32
    assert stat.S_IMODE((tmp_path / "root.key").stat().st_mode) == 0o600
    assert KeyFileRoot(tmp_path / "root.key", create_if_missing=True).load() == key


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o010])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    root = KeyFileRoot(tmp_path / "root.key")
    root.create()
    secret = (tmp_path / "root.key").read_bytes()
    os.chmod(tmp_path / "root.key", mode)
    with pytest.raises(RootOfTrustError, match="group or others") as caught:
        root.load()
    assert f"{mode:04o}" in caught.value.message
    assert str(tmp_path) not in caught.value.message
    _assert_no_secret(caught.value.message, secret)


def test_key_file_of_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    path.write_bytes(b"x" * 33)
    path.chmod(0o600)
    with pytest.raises(RootOfTrustError, match="32 bytes"):
        KeyFileRoot(path).load()


def test_key_file_symlink_is_refused(tmp_path: Path) -> None:
    real = KeyFileRoot(tmp_path / "real.key")
    real.create()
    (tmp_path / "link.key").symlink_to(tmp_path / "real.key")
    with pytest.raises(RootOfTrustError):
        KeyFileRoot(tmp_path / "link.key").load()


def test_key_file_root_warns_it_is_for_development(tmp_path: Path) -> None:
    root = KeyFileRoot(tmp_path / "root.key")
    assert root.kind == "key-file"
    assert "development" in root.warning


# --- passphrase root ------------------------------------------------------------------------------


def test_passphrase_params_created_on_first_use(tmp_path: Path) -> None:
    params = tmp_path / "seal.json"
    key = PassphraseRoot(params, SecretBytes(b"correct horse"), n=FAST_N).load()
    assert len(key) == 32
    assert stat.S_IMODE(params.stat().st_mode) == 0o600
    document = json.loads(params.read_text())
    assert document["kdf"] == "scrypt"
    assert (document["n"], document["r"], document["p"]) == (FAST_N, 8, 1)
    assert "correct horse" not in params.read_text()
    # Same passphrase, same parameters file: same key. Another passphrase: another key.
    assert PassphraseRoot(params, SecretBytes(b"correct horse")).load() == key
    assert PassphraseRoot(params, SecretBytes(b"correct horsE")).load() != key


def test_passphrase_default_cost(tmp_path: Path) -> None:
    assert SCRYPT_N == 2**16
    PassphraseRoot(tmp_path / "seal.json", SecretBytes(b"pw")).load()
    assert json.loads((tmp_path / "seal.json").read_text())["n"] == SCRYPT_N


def test_wrong_passphrase_is_refused_and_stays_sealed(tmp_path: Path, store: MemoryKeyringStore) -> None:
    params = tmp_path / "seal.json"
    first = Keystore(PassphraseRoot(params, SecretBytes(b"right"), n=FAST_N), store)
    first.unseal()
    wrapped = first.wrap(KEY, VERSION, SPEC, MATERIAL)

    second = Keystore(None, store)
    with pytest.raises(RootOfTrustError, match="wrong passphrase") as caught:
        second.unseal(PassphraseRoot(params, SecretBytes(b"wrong"), n=FAST_N))
    assert caught.value.message == WRONG_ROOT_MESSAGE
    assert second.sealed
    with pytest.raises(Sealed):
        second.unwrap(KEY, VERSION, SPEC, wrapped)

    second.unseal(PassphraseRoot(params, SecretBytes(b"right")))
    assert second.unwrap(KEY, VERSION, SPEC, wrapped) == MATERIAL


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RootOfTrustError, match="empty"):
        PassphraseRoot(tmp_path / "seal.json", SecretBytes(b"")).load()


@pytest.mark.parametrize(
    "document",
    [
        {"kdf": "pbkdf2", "n": FAST_N, "r": 8, "p": 1, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="},
        {"kdf": "scrypt", "n": 2**10, "r": 8, "p": 1, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="},
        {"kdf": "scrypt", "n": 2**30, "r": 8, "p": 1, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="},
        {"kdf": "scrypt", "n": FAST_N + 1, "r": 8, "p": 1, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="},
        {"kdf": "scrypt", "n": FAST_N, "r": 8, "p": 1, "salt": "AAAA"},
        {"kdf": "scrypt", "n": FAST_N, "r": 8, "p": 1, "salt": "not base64!"},
        {"kdf": "scrypt", "n": str(FAST_N), "r": 8, "p": 1, "salt": "AAAAAAAAAAAAAAAAAAAAAA=="},
        {"kdf": "scrypt", "n": FAST_N, "r": 8},
    ],
)
def test_bad_passphrase_params_are_refused(tmp_path: Path, document: dict[str, object]) -> None:
    params = tmp_path / "seal.json"
    params.write_text(json.dumps(document))
    params.chmod(0o600)
    with pytest.raises(RootOfTrustError):
        PassphraseRoot(params, SecretBytes(b"pw")).load()


def test_passphrase_params_readable_by_others_are_refused(tmp_path: Path) -> None:
    params = tmp_path / "seal.json"
    PassphraseRoot(params, SecretBytes(b"pw"), n=FAST_N).load()
    params.chmod(0o644)
    with pytest.raises(RootOfTrustError, match="group or others"):
        PassphraseRoot(params, SecretBytes(b"pw")).load()


def test_roots_do_not_reveal_secrets_in_repr(tmp_path: Path) -> None:
    assert "hunter2" not in repr(PassphraseRoot(tmp_path / "p.json", SecretBytes(b"hunter2")))
    assert str(tmp_path) not in repr(KeyFileRoot(tmp_path / "root.key"))


# --- keyring ---------------------------------------------------------------------------------------


def test_keyring_creates_term_1_and_reopens_it(store: MemoryKeyringStore) -> None:
    root_key = SecretBytes(os.urandom(32))
    keyring = Keyring.open(root_key, store)
    assert keyring.active_term == 1
    assert [term for term, _ in store.load_terms()] == [1]
    wrapped = wrap_material(keyring, KEY, VERSION, SPEC, MATERIAL)

    reopened = Keyring.open(root_key, store)
    assert reopened.active_term == 1
    assert unwrap_material(reopened, KEY, VERSION, SPEC, wrapped) == MATERIAL
    assert [term for term, _ in store.load_terms()] == [1]


def test_keyring_rejects_a_wrong_root(store: MemoryKeyringStore) -> None:
    Keyring.open(SecretBytes(os.urandom(32)), store)
    other = os.urandom(32)
    with pytest.raises(RootOfTrustError) as caught:
        Keyring.open(SecretBytes(other), store)
    assert caught.value.message == WRONG_ROOT_MESSAGE
    _assert_no_secret(caught.value.message, other)


def test_keyring_rotate_keeps_old_terms(keystore: Keystore) -> None:
    before = keystore.wrap(KEY, VERSION, SPEC, MATERIAL)
    assert before[1:5] == (1).to_bytes(4, "big")

    assert keystore.rotate_keyring() == 2
    assert keystore.active_term == 2
    after = keystore.wrap(KEY, OTHER_VERSION, SPEC, MATERIAL)
    assert after[1:5] == (2).to_bytes(4, "big")

    assert keystore.unwrap(KEY, VERSION, SPEC, before) == MATERIAL
    assert keystore.unwrap(KEY, OTHER_VERSION, SPEC, after) == MATERIAL


def test_keyring_terms_survive_reopen_after_rotate(store: MemoryKeyringStore) -> None:
    root = StaticRoot()
    first = Keystore(root, store)
    first.unseal()
    old = first.wrap(KEY, VERSION, SPEC, MATERIAL)
    first.rotate_keyring()
    first.rotate_keyring()
    new = first.wrap(KEY, VERSION, SPEC, MATERIAL)

    second = Keystore(root, store)
    second.unseal()
    assert second.active_term == 3
    assert second.unwrap(KEY, VERSION, SPEC, old) == MATERIAL
    assert second.unwrap(KEY, VERSION, SPEC, new) == MATERIAL


def test_term_added_by_another_node_is_picked_up_on_unwrap(store: MemoryKeyringStore) -> None:
    root = StaticRoot()
    node_a, node_b = Keystore(root, store), Keystore(root, store)
    node_a.unseal()
    node_b.unseal()
    node_a.rotate_keyring()
    wrapped = node_a.wrap(KEY, VERSION, SPEC, MATERIAL)
    assert node_b.active_term == 1
    assert node_b.unwrap(KEY, VERSION, SPEC, wrapped) == MATERIAL
    assert node_b.active_term == 2


def test_rotate_race_has_one_winner(store: MemoryKeyringStore) -> None:
    root = StaticRoot()
    node_a, node_b = Keystore(root, store), Keystore(root, store)
    node_a.unseal()
    node_b.unseal()
    assert node_a.rotate_keyring() == 2
    # node_b still believes term 1 is the newest, so it tries to add term 2: TermExists, then reload.
    assert node_b.rotate_keyring() == 2
    assert [term for term, _ in store.load_terms()] == [1, 2]
    wrapped = node_b.wrap(KEY, VERSION, SPEC, MATERIAL)
    assert node_a.unwrap(KEY, VERSION, SPEC, wrapped) == MATERIAL


class _LosesTheRaceStore(MemoryKeyringStore):
    """Reports no terms on the first load, as if another process were creating term 1 right now."""

    def __init__(self, winner_root: SecretBytes) -> None:
        super().__init__()
        self._winner_root = winner_root
        self._first_load = True

    def load_terms(self) -> list[tuple[int, bytes]]:
        if self._first_load:
            self._first_load = False
            Keyring.open(self._winner_root, self)  # the other process creates term 1
            return []
        return super().load_terms()


def test_creating_term_1_race_has_one_winner() -> None:
    root_key = SecretBytes(os.urandom(32))
    store = _LosesTheRaceStore(root_key)
    keyring = Keyring.open(root_key, store)
    assert keyring.terms == [1]
    assert len(store.terms) == 1
    with pytest.raises(TermExists):
        store.add_term(1, b"x")


def test_tampered_term_is_an_integrity_error(store: MemoryKeyringStore) -> None:
    root_key = SecretBytes(os.urandom(32))
    keyring = Keyring.open(root_key, store)
    keyring.rotate()
    wrapped = bytearray(store.terms[2])
    wrapped[20] ^= 0x01
    store.terms[2] = bytes(wrapped)
    with pytest.raises(StorageIntegrityError, match=r"\[2\]"):
        Keyring.open(root_key, store)


def test_kek_rows_swapped_between_terms_fail(store: MemoryKeyringStore) -> None:
    root_key = SecretBytes(os.urandom(32))
    keyring = Keyring.open(root_key, store)
    keyring.rotate()
    store.terms[1], store.terms[2] = store.terms[2], store.terms[1]
    # Neither term opens under its new number; to the keyring that is indistinguishable from a wrong root.
    with pytest.raises(RootOfTrustError):
        Keyring.open(root_key, store)


def test_malformed_term_is_an_integrity_error(store: MemoryKeyringStore) -> None:
    root_key = SecretBytes(os.urandom(32))
    Keyring.open(root_key, store)
    store.terms[1] = store.terms[1][:-1]
    with pytest.raises(StorageIntegrityError):
        Keyring.open(root_key, store)


def test_root_key_must_be_32_bytes(store: MemoryKeyringStore) -> None:
    with pytest.raises(RootOfTrustError, match="32 bytes"):
        Keyring.open(SecretBytes(b"short"), store)


# --- envelope ------------------------------------------------------------------------------------


def test_wrap_format_and_round_trip(keystore: Keystore) -> None:
    wrapped = keystore.wrap(KEY, VERSION, SPEC, MATERIAL)
    assert wrapped[0] == 0x01
    assert len(wrapped) == 1 + 4 + 12 + 32 + 16
    assert MATERIAL.reveal() not in wrapped
    assert keystore.unwrap(KEY, VERSION, SPEC, wrapped) == MATERIAL
    assert keystore.wrap(KEY, VERSION, SPEC, MATERIAL) != wrapped  # fresh IV every time


@pytest.mark.parametrize(
    ("key_id", "version_id", "spec"),
    [
        (OTHER_KEY, VERSION, SPEC),
        (KEY, OTHER_VERSION, SPEC),
        (KEY, VERSION, OTHER_SPEC),
        (OTHER_KEY, OTHER_VERSION, SPEC),
        # Length prefixes: moving characters from one field to the next must not give the same AAD.
        (KeyId(KEY + VERSION[:1]), KeyVersionId(VERSION[1:]), SPEC),
    ],
)
def test_row_moved_to_another_owner_fails(
    keystore: Keystore, key_id: KeyId, version_id: KeyVersionId, spec: KeySpec
) -> None:
    wrapped = keystore.wrap(KEY, VERSION, SPEC, MATERIAL)
    with pytest.raises(StorageIntegrityError) as caught:
        keystore.unwrap(key_id, version_id, spec, wrapped)
    assert caught.value.message == StorageIntegrityError().message


def test_rows_swapped_between_keys_both_fail(keystore: Keystore) -> None:
    row_a = keystore.wrap(KEY, VERSION, SPEC, MATERIAL)
    row_b = keystore.wrap(OTHER_KEY, OTHER_VERSION, SPEC, SecretBytes(os.urandom(32)))
    with pytest.raises(StorageIntegrityError):
        keystore.unwrap(KEY, VERSION, SPEC, row_b)
    with pytest.raises(StorageIntegrityError):
        keystore.unwrap(OTHER_KEY, OTHER_VERSION, SPEC, row_a)


def test_every_tampered_byte_fails(keystore: Keystore) -> None:
    wrapped = keystore.wrap(KEY, VERSION, SPEC, MATERIAL)
    for position in range(len(wrapped)):
        for mask in (0x01, 0x80):
            tampered = bytearray(wrapped)
            tampered[position] ^= mask
            with pytest.raises(StorageIntegrityError) as caught:
                keystore.unwrap(KEY, VERSION, SPEC, bytes(tampered))
            assert caught.value.message == StorageIntegrityError().message


def test_truncated_or_extended_rows_fail(keystore: Keystore) -> None:
    wrapped = keystore.wrap(KEY, VERSION, SPEC, MATERIAL)
    for cut in range(len(wrapped)):
        with pytest.raises(StorageIntegrityError):
            keystore.unwrap(KEY, VERSION, SPEC, wrapped[:cut])
    with pytest.raises(StorageIntegrityError):
        keystore.unwrap(KEY, VERSION, SPEC, wrapped + b"\x00")


def test_unknown_term_fails(keystore: Keystore) -> None:
    wrapped = bytearray(keystore.wrap(KEY, VERSION, SPEC, MATERIAL))
    wrapped[1:5] = (7).to_bytes(4, "big")
    with pytest.raises(StorageIntegrityError):
        keystore.unwrap(KEY, VERSION, SPEC, bytes(wrapped))


# --- the seal --------------------------------------------------------------------------------------


def test_starts_sealed_and_refuses(store: MemoryKeyringStore) -> None:
    keystore = Keystore(StaticRoot(), store)
    assert keystore.sealed
    with pytest.raises(Sealed):
        keystore.wrap(KEY, VERSION, SPEC, MATERIAL)
    with pytest.raises(Sealed):
        keystore.unwrap(KEY, VERSION, SPEC, b"\x01" + b"\x00" * 40)
    with pytest.raises(Sealed):
        keystore.rotate_keyring()
    with pytest.raises(Sealed):
        _ = keystore.active_term
    assert store.terms == {}  # nothing is created until the keystore is unsealed


def test_seal_refuses_again_and_unseal_restores(keystore: Keystore) -> None:
    wrapped = keystore.wrap(KEY, VERSION, SPEC, MATERIAL)
    keystore.seal()
    assert keystore.sealed
    with pytest.raises(Sealed):
        keystore.unwrap(KEY, VERSION, SPEC, wrapped)
    keystore.unseal()
    assert keystore.unwrap(KEY, VERSION, SPEC, wrapped) == MATERIAL


def test_unseal_without_a_root_is_refused(store: MemoryKeyringStore) -> None:
    keystore = Keystore(None, store)
    with pytest.raises(RootOfTrustError, match="No root of trust"):
        keystore.unseal()
    assert keystore.sealed
    keystore.unseal(StaticRoot())
    assert not keystore.sealed
    keystore.seal()
    with pytest.raises(RootOfTrustError):
        keystore.unseal()  # the root given to unseal() was not kept


def test_unseal_is_idempotent(keystore: Keystore) -> None:
    keystore.rotate_keyring()
    keystore.unseal()
    assert keystore.active_term == 2


def test_seal_notifies_listeners(keystore: Keystore) -> None:
    calls: list[str] = []
    keystore.on_seal(lambda: calls.append("sealed"))
    keystore.seal()
    keystore.seal()
    assert calls == ["sealed", "sealed"]


def test_repr_holds_no_material(keystore: Keystore, store: MemoryKeyringStore) -> None:
    text = repr(keystore) + repr(keystore._unsealed()) + repr(store)
    _assert_no_secret(text, MATERIAL.reveal())
    for wrapped in store.terms.values():
        assert wrapped.hex() not in text


def test_concurrent_wrap_unwrap_rotate_seal(store: MemoryKeyringStore) -> None:
    keystore = Keystore(StaticRoot(), store)
    keystore.unseal()
    failures: list[BaseException] = []
    stop = threading.Event()

    def worker(index: int) -> None:
        version = KeyVersionId(f"00000000-0000-4000-8000-{index:012d}")
        material = SecretBytes(os.urandom(32))
        while not stop.is_set():
            try:
                wrapped = keystore.wrap(KEY, version, SPEC, material)
                assert keystore.unwrap(KEY, version, SPEC, wrapped) == material
            except Sealed:
                continue
            except BaseException as exc:
                failures.append(exc)
                return

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        keystore.rotate_keyring()
        keystore.seal()
        keystore.unseal()
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert keystore.active_term == 21
