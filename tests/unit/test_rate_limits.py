"""Per-tenant rate limits: the bucket arithmetic (GCRA) with an explicit clock, and the node's table."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openkms.errors import Throttled
from openkms.node.rate_limits import (
    Limits,
    Rate,
    RateClass,
    SharedRateLimiter,
    _without_redundant,
    next_arrival,
)

NOW = 1_700_000_000.0
SECOND = 1_000_000_000
SPAWN = multiprocessing.get_context("spawn")


def _admitted(rate: Rate, times_ns: list[int]) -> list[bool]:
    tat, answers = 0, []
    for now in times_ns:
        arrival = next_arrival(tat, now, rate.interval_ns, rate.capacity_ns)
        answers.append(arrival is not None)
        tat = tat if arrival is None else arrival
    return answers


def test_a_full_bucket_admits_its_burst_then_refills_at_the_rate() -> None:
    rate = Rate(10, 5)  # 10 a second, 5 at once
    start = 1_000 * SECOND
    assert _admitted(rate, [start] * 6) == [True] * 5 + [False]
    # One token back every 100 ms: at +100 ms one more, not two.
    assert _admitted(rate, [start] * 5 + [start + SECOND // 10] * 2) == [True] * 6 + [False]


def test_an_idle_bucket_refills_to_its_burst_and_no_further() -> None:
    rate = Rate(10, 5)
    start = 1_000 * SECOND
    later = start + 60 * SECOND  # a minute idle is worth 600 tokens, capped at 5
    assert _admitted(rate, [start] * 5 + [later] * 6) == [True] * 10 + [False]


def test_a_steady_caller_at_the_rate_is_never_refused() -> None:
    rate = Rate(100, 1)  # no burst at all
    times = [1_000 * SECOND + n * (SECOND // 100) for n in range(1_000)]
    assert all(_admitted(rate, times))
    assert not all(_admitted(rate, [t - n for n, t in enumerate(times)]))  # a hair faster: refused


def _limits(crypto: Rate, management: Rate, ram: Rate, per_key: Rate | None = None) -> Limits:
    rates = (crypto, management, ram)
    return Limits(per_account=rates, per_access_key=rates if per_key is None else (per_key,) * 3)


UNLIMITED = Rate(0, 0)


@pytest.fixture
def limiter(tmp_path: Path) -> SharedRateLimiter:
    return SharedRateLimiter(
        tmp_path / "rate-limits.shm", _limits(Rate(10, 3), Rate(5, 2), Rate(2, 1)), slots=1 << 10
    )


def _count(limiter: SharedRateLimiter, account: str, key: str, rate_class: RateClass, now: float) -> int:
    admitted = 0
    for _ in range(50):
        try:
            limiter.admit(account, key, rate_class, now)
        except Throttled:
            continue
        admitted += 1
    return admitted


def test_each_class_of_each_account_has_its_own_bucket(limiter: SharedRateLimiter) -> None:
    assert _count(limiter, "1111", "LTAIa", RateClass.CRYPTO, NOW) == 3
    assert _count(limiter, "1111", "LTAIa", RateClass.MANAGEMENT, NOW) == 2
    assert _count(limiter, "1111", "LTAIa", RateClass.RAM, NOW) == 1
    assert _count(limiter, "2222", "LTAIb", RateClass.CRYPTO, NOW) == 3  # another account: untouched
    assert _count(limiter, "1111", "LTAIa", RateClass.CRYPTO, NOW + 0.1) == 1  # 10/s: one back
    limiter.close()


def test_the_account_limit_binds_across_its_access_keys(limiter: SharedRateLimiter) -> None:
    assert _count(limiter, "1111", "LTAIa", RateClass.CRYPTO, NOW) == 3
    assert _count(limiter, "1111", "LTAIc", RateClass.CRYPTO, NOW) == 0  # same account, other key
    limiter.close()


def test_a_refused_request_takes_no_token_from_either_bucket(tmp_path: Path) -> None:
    # The access key allows 1 at once, the account 3: the key's refusals leave the account's budget.
    limits = _limits(Rate(10, 3), UNLIMITED, UNLIMITED, per_key=Rate(10, 1))
    with SharedRateLimiter(tmp_path / "rate-limits.shm", limits, slots=1 << 10) as limiter:
        assert _count(limiter, "1111", "LTAIa", RateClass.CRYPTO, NOW) == 1
        assert _count(limiter, "1111", "LTAIb", RateClass.CRYPTO, NOW) == 1
        assert _count(limiter, "1111", "LTAIc", RateClass.CRYPTO, NOW) == 1
        assert _count(limiter, "1111", "LTAId", RateClass.CRYPTO, NOW) == 0


def test_a_zero_rate_is_no_limit(tmp_path: Path) -> None:
    with SharedRateLimiter(tmp_path / "r.shm", _limits(UNLIMITED, UNLIMITED, UNLIMITED)) as limiter:
        assert _count(limiter, "1111", "LTAIa", RateClass.CRYPTO, NOW) == 50


def test_idle_buckets_free_their_slots(tmp_path: Path) -> None:
    # 16 slots, many more keys over time: a key whose bucket refilled leaves its slot to the next.
    limits = _limits(Rate(1000, 1), UNLIMITED, UNLIMITED, per_key=UNLIMITED)
    with SharedRateLimiter(tmp_path / "r.shm", limits, slots=16, max_probe=16) as limiter:
        for second in range(200):
            for account in range(8):
                limiter.admit(f"{second}-{account}", "LTAIa", RateClass.CRYPTO, NOW + second)


def _spend(path: str, count: int) -> int:
    limits = _limits(Rate(1, 100), UNLIMITED, UNLIMITED)
    with SharedRateLimiter(Path(path), limits, slots=1 << 10) as limiter:
        return _count_n(limiter, count)


def _count_n(limiter: SharedRateLimiter, count: int) -> int:
    admitted = 0
    for _ in range(count):
        try:
            limiter.admit("1111", "LTAIa", RateClass.CRYPTO, NOW)
            admitted += 1
        except Throttled:
            pass
    return admitted


def test_the_worker_processes_of_a_node_share_the_buckets(tmp_path: Path) -> None:
    path = tmp_path / "rate-limits.shm"
    with SPAWN.Pool(3) as pool:
        admitted = pool.starmap(_spend, [(str(path), 80)] * 3)
    assert sum(admitted) == 100  # 240 tries from three processes, one burst of 100 between them


def _spend_under_the_replay_lock(folder: str, count: int) -> int:
    """A worker as `server/app.py` builds it: the limiter serialised by the replay cache's flock and
    charged from inside `remember`, one nonce per request."""
    from openkms.node.nonces import SharedNonceStore

    limits = _limits(Rate(1, 100), UNLIMITED, UNLIMITED)
    admitted = 0
    with (
        SharedNonceStore(Path(folder) / "nonces.shm", slots=1 << 12) as nonces,
        SharedRateLimiter(
            Path(folder) / "rate-limits.shm", limits, slots=1 << 10, lock=nonces.lock
        ) as limiter,
    ):
        assert limiter.lock is nonces.lock
        for n in range(count):
            with contextlib.suppress(Throttled):
                admitted += nonces.remember(
                    "LTAIa",
                    f"{uuid.uuid4()}-{n}",
                    NOW + 900,
                    NOW,
                    account="1111",
                    admit=lambda: limiter.admit_held("1111", "LTAIa", RateClass.CRYPTO, NOW),
                )
        # Outside `remember`, `admit` takes the same flock itself.
        admitted += _count_n(limiter, 1)
    return admitted


def test_one_flock_serialises_the_replay_cache_and_the_buckets(tmp_path: Path) -> None:
    with SPAWN.Pool(3) as pool:
        admitted = pool.starmap(_spend_under_the_replay_lock, [(str(tmp_path), 80)] * 3)
    assert sum(admitted) == 100  # 243 tries from three processes, one burst of 100 between them


@given(
    account=st.tuples(st.integers(1, 50), st.integers(1, 20)),
    key=st.tuples(st.integers(1, 50), st.integers(1, 20)),
    gaps=st.lists(st.integers(0, SECOND // 5), max_size=200),
)
def test_an_access_key_bucket_that_cannot_refuse_is_dropped(
    account: tuple[int, int], key: tuple[int, int], gaps: list[int]
) -> None:
    """The limiter keeps one bucket per request when the access key's rate and burst are at least
    the account's (the default): both buckets together admit exactly what the account's alone does."""
    account_rate, key_rate = Rate(*account), Rate(*key)
    account_params = (account_rate.interval_ns, account_rate.capacity_ns)
    key_params = (key_rate.interval_ns, key_rate.capacity_ns)
    kept = _without_redundant(account_params, key_params)
    times = list(itertools.accumulate(gaps, initial=1_000 * SECOND))

    def run(buckets: list[tuple[int, int]]) -> list[bool]:
        tats, answers = [0] * len(buckets), []
        for now in times:
            arrivals = [next_arrival(tat, now, *params) for tat, params in zip(tats, buckets, strict=True)]
            admitted = all(arrival is not None for arrival in arrivals)
            answers.append(admitted)
            if admitted:
                tats = [arrival for arrival in arrivals if arrival is not None]
        return answers

    both = run([account_params, key_params])
    if kept[1] is None:
        assert run([account_params]) == both
    if account == key:
        assert kept == (account_params, None)
