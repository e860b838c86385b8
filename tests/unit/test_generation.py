"""The change generation: a counter every worker of a node reads to know its caches went stale."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from openkms.errors import Unavailable
from openkms.node.generation import ChangeGeneration, Generation, LocalGeneration

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(params=["local", "shared"])
def generation(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Generation]:
    if request.param == "local":
        yield LocalGeneration()
        return
    shared = ChangeGeneration(tmp_path / "run" / "generation.shm")
    yield shared
    shared.close()


def test_bump_moves_the_counter(generation: Generation) -> None:
    assert generation.current() == 0
    assert generation.bump() == 1
    assert generation.bump() == 2
    assert generation.current() == 2


def test_every_opener_sees_the_same_counter(tmp_path: Path) -> None:
    path = tmp_path / "generation.shm"
    with ChangeGeneration(path) as first, ChangeGeneration(path) as second:
        first.bump()
        assert second.current() == 1
        second.bump()
        assert first.current() == 2
    with ChangeGeneration(path) as reopened:
        assert reopened.current() == 2


def test_a_corrupt_file_is_recreated(tmp_path: Path) -> None:
    path = tmp_path / "generation.shm"
    path.write_bytes(b"\xff" * 64)
    with ChangeGeneration(path) as generation:
        assert generation.current() == 0
        assert generation.bump() == 1


def _bump(path: str, times: int) -> list[int]:
    with ChangeGeneration(Path(path)) as generation:
        return [generation.bump() for _ in range(times)]


def test_bumps_from_two_processes_are_never_lost(tmp_path: Path) -> None:
    path = tmp_path / "generation.shm"
    with ChangeGeneration(path) as generation:
        with SPAWN.Pool(2) as pool:
            first, second = pool.starmap(_bump, [(str(path), 2000), (str(path), 2000)])
        assert generation.current() == 4000
        assert sorted(first + second) == list(range(1, 4001))  # each value handed out exactly once


def _hold_open(path: str, ready: object, release: object) -> None:
    with ChangeGeneration(Path(path)):
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


def test_an_incompatible_file_in_use_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "generation.shm"
    ready, release = SPAWN.Event(), SPAWN.Event()
    holder = SPAWN.Process(target=_hold_open, args=(str(path), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with path.open("r+b") as raw:
            raw.write(b"OKMSGENR\x63\x00\x00\x00")  # as if written by a future format version 99
        inode = path.stat().st_ino
        with pytest.raises(Unavailable):
            ChangeGeneration(path)
        assert path.stat().st_ino == inode  # the running worker's file was left in place
    finally:
        release.set()
        holder.join(60)
    assert holder.exitcode == 0


def test_bumps_made_here_are_counted_apart_from_announced_ones(tmp_path: Path) -> None:
    for generation in (LocalGeneration(), ChangeGeneration(tmp_path / "generation.shm")):
        generation.bump()
        generation.bump(here=False)  # another node's change, announced
        generation.bump()
        assert generation.current() == 3
        assert generation.made_here == 2
