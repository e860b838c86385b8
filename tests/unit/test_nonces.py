"""Replay protection (P15) on one node: the in-process store and the table shared by worker processes."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.errors import Throttled, Unavailable
from openkms.node.nonces import MemoryNonceStore, NonceStore, SharedNonceStore

NOW = 1_700_000_000.0
AK = "LTAI5tAbcdefghijklmnopqr"
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(params=["memory", "shared"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NonceStore]:
    if request.param == "memory":
        yield MemoryNonceStore()
        return
    shared = SharedNonceStore(tmp_path / "run" / "nonces.shm", slots=1 << 12)
    yield shared
    shared.close()


def test_a_replay_is_refused(store: NonceStore) -> None:
    assert store.remember(AK, "nonce-1", NOW + 900, NOW)
    assert not store.remember(AK, "nonce-1", NOW + 900, NOW + 1)
    assert store.remember(AK, "nonce-2", NOW + 900, NOW + 1)


def test_nonces_are_per_access_key(store: NonceStore) -> None:
    assert store.remember(AK, "same-nonce", NOW + 900, NOW)
    assert store.remember("LTAI5tOtherAccessKey0000", "same-nonce", NOW + 900, NOW)
    assert not store.remember(AK, "same-nonce", NOW + 900, NOW)
    # The separator keeps "ab" + "c" apart from "a" + "bc".
    assert store.remember("ab", "c", NOW + 900, NOW)
    assert store.remember("a", "bc", NOW + 900, NOW)


def test_an_entry_is_forgotten_at_its_expiry(store: NonceStore) -> None:
    assert store.remember(AK, "nonce", NOW + 900, NOW)
    assert not store.remember(AK, "nonce", NOW + 900, NOW + 899.999)
    assert store.remember(AK, "nonce", NOW + 1800, NOW + 900)
    assert not store.remember(AK, "nonce", NOW + 1800, NOW + 901)


def test_a_full_shared_table_fails_closed(tmp_path: Path) -> None:
    with SharedNonceStore(tmp_path / "nonces.shm", slots=4, max_probe=4) as tiny:
        for number in range(4):
            assert tiny.remember(AK, f"nonce-{number}", NOW + 60, NOW)
        with pytest.raises(Unavailable, match="replay cache is full"):
            tiny.remember(AK, "one-too-many", NOW + 60, NOW)
        assert not tiny.remember(AK, "nonce-0", NOW + 60, NOW)  # a replay is still recognised
        assert tiny.remember(AK, "one-too-many", NOW + 120, NOW + 60)  # expired slots are free again


def test_a_full_memory_store_fails_closed() -> None:
    store = MemoryNonceStore(max_entries=3)
    for number in range(3):
        assert store.remember(AK, f"nonce-{number}", NOW + 60, NOW)
    with pytest.raises(Unavailable, match="replay cache is full"):
        store.remember(AK, "one-too-many", NOW + 60, NOW)
    assert store.remember(AK, "one-too-many", NOW + 120, NOW + 60)
    assert len(store) == 1  # the expired entries were purged


def test_a_second_opener_attaches_to_the_same_table(tmp_path: Path) -> None:
    path = tmp_path / "nonces.shm"
    with SharedNonceStore(path, slots=1 << 10) as first, SharedNonceStore(path, slots=1 << 10) as second:
        assert first.remember(AK, "nonce", NOW + 60, NOW)
        assert not second.remember(AK, "nonce", NOW + 60, NOW)
    with SharedNonceStore(path, slots=1 << 10) as reopened:
        assert not reopened.remember(AK, "nonce", NOW + 60, NOW)  # survives a restart of the workers


def test_the_file_is_allocated_up_front_and_private(tmp_path: Path) -> None:
    # Allocated in full at creation, so no request pays for a block allocation in a page fault.
    path = tmp_path / "nonces.shm"
    with SharedNonceStore(path) as store:
        assert store.slots == 1 << 22
        status = path.stat()
        assert status.st_size > 96 * 1024 * 1024
        assert status.st_blocks * 512 >= status.st_size
        assert status.st_mode & 0o077 == 0


def test_a_file_of_another_geometry_is_recreated_when_nobody_uses_it(tmp_path: Path) -> None:
    path = tmp_path / "nonces.shm"
    with SharedNonceStore(path, slots=64) as old:
        assert old.remember(AK, "nonce", NOW + 60, NOW)
    with SharedNonceStore(path, slots=128) as new:
        assert (new.slots, path.stat().st_size) == (128, 4096 + 128 * 24 + 256 * 680)
        assert new.remember(AK, "nonce", NOW + 60, NOW)  # a new table, a new fingerprint key


def test_a_corrupt_file_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "nonces.shm"
    path.write_bytes(b"not a nonce table")
    with SharedNonceStore(path, slots=64) as store:
        assert store.slots == 64
        assert store.remember(AK, "nonce", NOW + 60, NOW)


def _hold_open(path: str, slots: int, ready: object, release: object) -> None:
    with SharedNonceStore(Path(path), slots=slots) as store:
        store.remember(AK, "held", NOW + 60, NOW)
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


def test_a_file_in_use_keeps_its_geometry(tmp_path: Path) -> None:
    path = tmp_path / "nonces.shm"
    ready, release = SPAWN.Event(), SPAWN.Event()
    holder = SPAWN.Process(target=_hold_open, args=(str(path), 64, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with SharedNonceStore(path, slots=128) as late:
            assert late.slots == 64  # joined the running workers rather than pulling the file away
            assert not late.remember(AK, "held", NOW + 60, NOW)
    finally:
        release.set()
        holder.join(60)
    assert holder.exitcode == 0


def _remember_all(path: str, nonces: list[str]) -> list[bool]:
    with SharedNonceStore(Path(path), slots=1 << 16) as store:
        return [store.remember(AK, nonce, NOW + 60, NOW) for nonce in nonces]


def test_a_replay_is_refused_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "nonces.shm"
    with SharedNonceStore(path, slots=1 << 16) as store:
        assert store.remember(AK, "seen-by-parent", NOW + 60, NOW)
        with SPAWN.Pool(1) as pool:
            assert pool.apply(_remember_all, (str(path), ["seen-by-parent", "fresh"])) == [False, True]
        assert not store.remember(AK, "fresh", NOW + 60, NOW)


def test_two_processes_racing_accept_each_nonce_once(tmp_path: Path) -> None:
    path = tmp_path / "nonces.shm"  # created by whichever process gets there first
    nonces = [f"nonce-{number}" for number in range(5000)]
    with SPAWN.Pool(2) as pool:
        first, second = pool.starmap(_remember_all, [(str(path), nonces), (str(path), nonces[::-1])])
    accepted = [a + b for a, b in zip(first, second[::-1], strict=True)]
    assert accepted == [1] * len(nonces)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_takes_its_own_lock(tmp_path: Path) -> None:
    path = tmp_path / "nonces.shm"
    with SharedNonceStore(path, slots=1 << 10) as store:
        assert store.remember(AK, "before-fork", NOW + 60, NOW)
        store._file.acquire()  # the parent is inside the critical section while it forks
        pid = os.fork()
        if pid == 0:
            # An inherited descriptor would share the parent's flock and walk right in.
            try:
                fcntl.flock(store._file._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os._exit(0)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        store._file.release()
        assert os.waitstatus_to_exitcode(status) == 0

        pid = os.fork()
        if pid == 0:  # and once the parent is out, the child's entries are the parent's entries
            ok = not store.remember(AK, "before-fork", NOW + 60, NOW)
            ok = ok and store.remember(AK, "from-child", NOW + 60, NOW)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert not store.remember(AK, "from-child", NOW + 60, NOW)


_OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["AK1", "AK2", "AK3"]),
        st.sampled_from([f"n{number}" for number in range(6)]),
        st.integers(min_value=0, max_value=5_000),  # lifetime, ms
        st.integers(min_value=0, max_value=2_000),  # clock advance before the call, ms
    ),
    max_size=80,
)


def _check_against_model(store: NonceStore, operations: list[tuple[str, str, int, int]]) -> None:
    model: dict[tuple[str, str], int] = {}
    now_ms = 1_700_000_000_000
    for access_key_id, nonce, lifetime_ms, advance_ms in operations:
        now_ms += advance_ms
        expected = not ((access_key_id, nonce) in model and now_ms < model[access_key_id, nonce])
        if expected:
            model[access_key_id, nonce] = now_ms + lifetime_ms
        answer = store.remember(access_key_id, nonce, (now_ms + lifetime_ms) / 1000, now_ms / 1000)
        assert answer == expected


@settings(max_examples=200, deadline=None)
@given(_OPERATIONS)
def test_the_memory_store_behaves_like_a_dict(operations: list[tuple[str, str, int, int]]) -> None:
    _check_against_model(MemoryNonceStore(), operations)


@settings(max_examples=200, deadline=None)
@given(_OPERATIONS, st.sampled_from([32, 64, 1024]))
def test_the_shared_store_behaves_like_a_dict(
    operations: list[tuple[str, str, int, int]], slots: int
) -> None:
    # 18 distinct entries at most, fewer than any probe window: the table is never full here.
    with (
        tempfile.TemporaryDirectory() as directory,
        SharedNonceStore(Path(directory) / "nonces.shm", slots=slots, max_probe=32) as store,
    ):
        _check_against_model(store, operations)


@pytest.fixture(params=["memory", "shared"])
def shared_out(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NonceStore]:
    """A store in which each account may hold 5 live entries."""
    if request.param == "memory":
        yield MemoryNonceStore(account_share=5)
        return
    shared = SharedNonceStore(tmp_path / "nonces.shm", slots=1 << 12, account_share=5)
    yield shared
    shared.close()


def test_an_account_over_its_share_is_throttled_while_another_gets_through(shared_out: NonceStore) -> None:
    for number in range(5):
        assert shared_out.remember(AK, f"a-{number}", NOW + 900, NOW, account="1111")
    with pytest.raises(Throttled):
        shared_out.remember("LTAI5tAnotherKeyOfA00000", "a-5", NOW + 900, NOW, account="1111")
    for number in range(5):
        assert shared_out.remember("LTAI5tKeyOfAccountB00000", f"b-{number}", NOW + 900, NOW, account="2222")
    # The refused nonce was not spent, and a replay is still a replay, not a refusal.
    assert not shared_out.remember(AK, "a-0", NOW + 900, NOW + 1, account="1111")
    # Once its entries expire the account has its share again.
    assert shared_out.remember("LTAI5tAnotherKeyOfA00000", "a-5", NOW + 2000, NOW + 1000, account="1111")


def test_admit_runs_after_the_replay_check_and_a_refusal_spends_nothing(store: NonceStore) -> None:
    calls: list[str] = []

    def refuse() -> None:
        calls.append("refuse")
        raise Throttled()

    with pytest.raises(Throttled):
        store.remember(AK, "nonce", NOW + 900, NOW, account="1111", admit=refuse)
    assert store.remember(AK, "nonce", NOW + 900, NOW, account="1111", admit=lambda: calls.append("ok"))
    assert not store.remember(AK, "nonce", NOW + 900, NOW, account="1111", admit=refuse)  # replay: no call
    assert calls == ["refuse", "ok"]


def test_the_share_counts_an_entry_until_its_expiry_bucket_ends(tmp_path: Path) -> None:
    with SharedNonceStore(tmp_path / "nonces.shm", slots=1 << 12, account_share=1_000) as store:
        for number in range(300):
            store.remember(AK, f"n-{number}", NOW + 100 + number, NOW, account="1111")
        assert store.live_of("1111", NOW) == 300
        assert store.live_of("2222", NOW) == 0
        # Entries expire over NOW+100 .. NOW+400; counts may run up to one 64 s bucket late.
        assert 0 < store.live_of("1111", NOW + 250) <= 300 - 150 + 64
        assert store.live_of("1111", NOW + 400 + 64) == 0
