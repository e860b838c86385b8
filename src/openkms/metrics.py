"""Prometheus metrics of a server process: every metric's name, labels and buckets, and `/metrics`.

Owns what operators can see of a node's work. Labels are few and bounded and never name a tenant's
anything: the door, the action (a name from the code's own tables, else "other"), the result code,
a cache's name, a job run's result, a key store's kind and state. Never a key id, account id,
access key id, instance id, request id or secret.

Several worker processes: `openkms serve` points PROMETHEUS_MULTIPROC_DIR at a folder of the node's
private memory (`server/metrics_files.py`) before any worker imports prometheus_client, so each
process keeps its values in a memory-mapped file there and `exposition` sums them. Without that
variable (tests in one process, admin commands) the values stay in the process.

Cheap on the hot path: a request adds to a few plain numbers of its process (`RequestMeter`), cache
lookups to plain integers (`Tally`); `flush`, which the server runs on its event loop every second and
before each scrape, adds them to the Prometheus values (about 0.5 us a request instead of 3 us of
locked writes to the memory-mapped files).
"""

from __future__ import annotations

import bisect
import os
import weakref

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = [
    "AUDIT_BATCH_RECORDS",
    "AUDIT_SYNC_SECONDS",
    "CACHE_LOOKUPS",
    "COHERENCE_DELAY_SECONDS",
    "CONTENT_TYPE",
    "JOB_RUNS",
    "JOB_STEPS",
    "KEY_STORE_BACKENDS",
    "OTHER",
    "REPLAY_CACHE_ENTRIES",
    "REPLAY_CACHE_SLOTS",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SEALED",
    "RequestMeter",
    "Tally",
    "exposition",
    "flush",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER = "other"  # the action label of anything not in the code's own tables

# Captured with the import of prometheus_client: its values live in files only if this was set then.
_MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "openkms_requests",
    "Requests answered by this node, by door (rpc, console, job), action and result (Success or a Code).",
    ["door", "action", "code"],
)
REQUEST_SECONDS = Histogram(
    "openkms_request_duration_seconds",
    "Time from receiving a request (RPC: its body read) to its audit record written, by door, action, code.",
    ["door", "action", "code"],
    buckets=_LATENCY_BUCKETS,
)
AUDIT_BATCH_RECORDS = Histogram(
    "openkms_audit_batch_records",
    "Audit records written (and made durable) by one group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)
AUDIT_SYNC_SECONDS = Histogram(
    "openkms_audit_sync_seconds",
    "Time to write one audit batch and make it durable (ring fdatasync or file fsync).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
CACHE_LOOKUPS = Counter(
    "openkms_cache_lookups",
    "Lookups in the in-memory caches of keys, aliases, instances, versions and credentials, by result.",
    ["cache", "result"],
)
REPLAY_CACHE_ENTRIES = Gauge(
    "openkms_replay_cache_entries",
    "Live entries in this node's replay cache (spent nonces still inside their window; an upper bound).",
    multiprocess_mode="mostrecent",
)
REPLAY_CACHE_SLOTS = Gauge(
    "openkms_replay_cache_slots",
    "Slots of this node's replay cache (nonce_slots); keep entries under about half of it.",
    multiprocess_mode="mostrecent",
)
COHERENCE_DELAY_SECONDS = Histogram(
    "openkms_coherence_delay_seconds",
    "Time from the start of a transaction that changed the store (on any node) to this node acting on it.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0),
)
JOB_RUNS = Counter(
    "openkms_job_runs",
    "Runs of the lifecycle job loop in this node's processes, by result (ok, failed).",
    ["result"],
)
JOB_STEPS = Counter("openkms_job_steps", "Job steps that acted (each one audited).")
KEY_STORE_BACKENDS = Gauge(
    "openkms_key_store_backends",
    "Hardware and external key-store instances by kind and by the state of their last health check "
    "(set by the node that runs the jobs).",
    ["kind", "state"],
    multiprocess_mode="mostrecent",
)
SEALED = Gauge(
    "openkms_sealed",
    "1 while the process that answered the scrape is sealed, else 0.",
    multiprocess_mode="mostrecent",
)


class RequestMeter:
    """Counts answered requests and their latency by (door, action, code).

    A request only adds to plain numbers of this process (a count, a latency sum, the count of its
    latency bucket); `flush` adds them to the Prometheus counter and histogram. Record and flush on
    the event loop (as the runner and the server do): nothing else guards them. `known_actions`
    bounds the action label of requests refused before their action was recognised (what a client
    sent goes in only if it is one of ours)."""

    def __init__(self, known_actions: frozenset[str] = frozenset()) -> None:
        self._known = known_actions
        self._pending: dict[tuple[str, str, str], _Latencies] = {}
        _METERS.add(self)

    def bounded(self, action: str) -> str:
        """`action` if it is one of the code's own action names, else "other"."""
        return action if action in self._known else OTHER

    def record(self, door: str, action: str, code: str, seconds: float) -> None:
        key = (door, action, code)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Latencies(key)
        pending.count += 1
        pending.total += seconds
        # Prometheus buckets are "less than or equal": bisect_left finds the first bound >= seconds.
        pending.buckets[bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1

    def flush(self) -> None:
        for pending in self._pending.values():
            pending.flush()


class _Latencies:
    """One label set's requests since the last flush, and its Prometheus children."""

    __slots__ = ("buckets", "count", "counter", "histogram", "total")

    def __init__(self, key: tuple[str, str, str]) -> None:
        self.counter = REQUESTS.labels(*key)
        self.histogram = REQUEST_SECONDS.labels(*key)
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one is +Inf

    def flush(self) -> None:
        if not self.count:
            return
        self.counter.inc(self.count)
        # prometheus-client observes one value at a time; a batch adds to the histogram's own values
        # (its sum and per-bucket counts, which it makes cumulative when exposed).
        self.histogram._sum.inc(self.total)
        for index, count in enumerate(self.buckets):
            if count:
                self.histogram._buckets[index].inc(count)
                self.buckets[index] = 0
        self.count, self.total = 0, 0.0


class Tally:
    """A counter for the hottest paths: a plain integer, added to its Prometheus counter by `flush`.

    `+= 1` from two threads at once may lose a count; these are statistics, and the paths that
    tally run on the event loop but for cache fills."""

    __slots__ = ("__weakref__", "_child", "_flushed", "count")

    def __init__(self, counter: Counter, *labels: str) -> None:
        self._child = counter.labels(*labels)
        self._flushed = 0
        self.count = 0
        _TALLIES.add(self)

    def flush(self) -> None:
        count = self.count
        if count != self._flushed:
            self._child.inc(count - self._flushed)
            self._flushed = count


# Every live meter and tally of this process, for `flush`.
_METERS: weakref.WeakSet[RequestMeter] = weakref.WeakSet()
_TALLIES: weakref.WeakSet[Tally] = weakref.WeakSet()


def flush() -> None:
    """Add what every meter and tally of this process counted since the last flush to the node's
    metrics. Call it on the event loop that records requests."""
    for meter in tuple(_METERS):
        meter.flush()
    for tally in tuple(_TALLIES):
        tally.flush()


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of every process of this node (multiprocess), else of this process (after
    the caller's `flush`)."""
    if _MULTIPROCESS_DIR is None:
        return generate_latest(REGISTRY), CONTENT_TYPE
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=_MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE
