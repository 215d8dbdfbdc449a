"""The member's Prometheus metrics: etcd's names, help texts, labels and buckets, written with
prometheus-client.

Three kinds of source, chosen by how often they change:

- state read at scrape time (`ServerCollector`): leader, indexes, database size, keys, watchers,
  versions. Nothing is paid on the request path for these.
- events on hot paths (one per request, per applied batch): kept in plain integers and lock-free
  histograms (`FastHistogram`, `MethodStats`) that only the event loop updates, and turned into metric
  families when scraped. prometheus-client's own Counter/Histogram take a lock per update and walk the
  buckets linearly; here a request costs one dict lookup, a bisect and two additions.
- rare events (fsync, health checks, slow applies, peer traffic): prometheus-client objects, module
  globals as in etcd (a process has one disk and one network).

`Metrics(server)` builds one member's registry: the globals, the process collector
(`process_resident_memory_bytes` …) and the member's own collector. `render()` is the exposition.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from etcdpy.app.peer import peer_metrics
from etcdpy.storage.wal_files import WalFiles

# etcd exposes no `_created` series; neither should we.
prometheus_client.disable_created_metrics()

# etcd's promhttp answer. prometheus-client >= 0.22 names its (unchanged) text format 1.0.0; scrapers
# written for etcd expect the 0.0.4 the format has always been called.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def exponential_buckets(start: float, factor: float, count: int) -> list[float]:
    """prometheus.ExponentialBuckets, which etcd declares its histograms with."""
    return [start * factor**i for i in range(count)]


# ------------------------------------------------------------------ process-wide (as etcd's globals)

GLOBAL = CollectorRegistry(auto_describe=True)

WAL_FSYNC = Histogram(
    "etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.",
    buckets=exponential_buckets(0.001, 2, 14), registry=GLOBAL)
SLOW_APPLIES = Counter(
    "etcd_server_slow_apply_total",
    "The total number of slow apply requests (likely overloaded from slow disk).", registry=GLOBAL)
PROPOSALS_FAILED = Counter(
    "etcd_server_proposals_failed_total", "The total number of failed proposals seen.", registry=GLOBAL)
for _collector in peer_metrics.COLLECTORS:
    GLOBAL.register(_collector)


class _WalBytes:
    """etcd_disk_wal_write_bytes_total (a gauge in etcd), counted by `TimedWalFiles`."""

    total = 0

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("etcd_disk_wal_write_bytes_total",
                                "Total number of bytes written in WAL.", value=self.total)


WAL_BYTES = _WalBytes()
GLOBAL.register(WAL_BYTES)


class _HealthChecks:
    """etcd_server_health_{success,failures}. etcd declares them counters without the `_total` suffix,
    which prometheus-client cannot write as counters; they are exposed as gauges under etcd's exact
    names (monotonic, as etcd's are), so queries and dashboards written for etcd keep working."""

    success = 0
    failures = 0

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("etcd_server_health_success", "The total number of successful health checks",
                                value=self.success)
        yield GaugeMetricFamily("etcd_server_health_failures", "The total number of failed health checks",
                                value=self.failures)


HEALTH = _HealthChecks()
GLOBAL.register(HEALTH)


class TimedWalFiles:
    """The WAL's file operations with fdatasync timed (etcd_disk_wal_fsync_duration_seconds) and bytes
    counted; a sync slower than `slow_sync_s` is logged as etcd's WAL logs it. Wrapping the files keeps
    the measurement exactly around the syscall, with no hook in the Raft loop."""

    def __init__(self, inner: WalFiles, on_slow_sync: Callable[[float], None], slow_sync_s: float = 1.0
                 ) -> None:
        self._inner = inner
        self._on_slow_sync = on_slow_sync
        self.slow_sync_s = slow_sync_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # every other operation passes straight through

    def write_at(self, fd: int, data: bytes, offset: int) -> None:
        self._inner.write_at(fd, data, offset)
        WAL_BYTES.total += len(data)  # records only: zeros written ahead (zero_fill) are not WAL bytes

    def fdatasync(self, fd: int) -> None:
        start = time.perf_counter()
        self._inner.fdatasync(fd)
        self.observe_sync(time.perf_counter() - start)

    def observe_sync(self, took: float) -> None:
        """A sync of the WAL took `took` seconds (here, or through kernel AIO: server/wal_aio.py)."""
        WAL_FSYNC.observe(took)
        if took > self.slow_sync_s:
            self._on_slow_sync(took)


# ------------------------------------------------------------------ hot paths, lock-free

class FastHistogram:
    """A histogram updated only from the event loop thread: no lock, one bisect per observation."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: list[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # bisect_left: the first bound >= value, i.e. the bucket `le` that holds it.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((prometheus_client.utils.floatToGoString(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out


BACKEND_COMMIT_BUCKETS = exponential_buckets(0.001, 2, 14)
# Client requests: etcd's gRPC histograms (grpc_server_handling_seconds) use Prometheus' default buckets.
REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]

# gRPC status codes by number, as go-grpc-prometheus labels them.
GRPC_CODES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
              "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
              "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"]


class MethodStats:
    """One RPC's counters: started, and per gRPC code a latency histogram (whose count is `handled`)."""

    __slots__ = ("service", "method", "grpc_type", "started", "by_code", "received", "sent")

    def __init__(self, service: str, method: str, grpc_type: str) -> None:
        self.service = service
        self.method = method
        self.grpc_type = grpc_type
        self.started = 0
        self.by_code: list[FastHistogram | None] = [None] * len(GRPC_CODES)
        self.received = 0  # stream messages (one per unary call), go-grpc-prometheus' msg counters
        self.sent = 0

    def done(self, code: int, seconds: float) -> None:
        hist = self.by_code[code]
        if hist is None:
            hist = self.by_code[code] = FastHistogram(REQUEST_BUCKETS)
        hist.observe(seconds)


class RequestStats:
    """Per-RPC statistics for the gateway, keyed by URL path; also the client byte counters."""

    def __init__(self) -> None:
        self._names: Callable[[str], tuple[str, str, str]] = _generic_names
        self.by_path: dict[str, MethodStats] = {}
        self.by_method: dict[tuple[str, str], MethodStats] = {}
        self.bytes_received = 0
        self.bytes_sent = 0

    def method(self, path: str) -> MethodStats:
        stats = self.by_path.get(path)
        if stats is None:
            service, method, grpc_type = self._names(path)
            # Aliases (/v3beta/, /v3/kv/lease/…) are one gRPC method: share its statistics.
            stats = self.by_method.get((service, method))
            if stats is None:
                stats = self.by_method[(service, method)] = MethodStats(service, method, grpc_type)
            self.by_path[path] = stats
        return stats

    def configure(self, names: Callable[[str], tuple[str, str, str]], paths: Iterable[str]) -> None:
        """Name paths as gRPC methods with `names` (the gateway knows its routes), and create every known
        method's statistics up front, so a scrape lists them at zero (as etcd's go-grpc-prometheus does
        for every registered method) before the first call."""
        self._names = names
        for path in paths:
            self.method(path)


def _generic_names(path: str) -> tuple[str, str, str]:
    """A path's gRPC names when the gateway has not said: `/v3/kv/range` -> etcdserverpb.Kv, Range."""
    parts = path.strip("/").split("/")
    service = parts[1].title() if len(parts) > 1 else "unknown"
    return f"etcdserverpb.{service}", "".join(p.title() for p in parts[2:]) or service, "unary"


def _request_families(stats: RequestStats) -> Iterator[Metric]:
    started = CounterMetricFamily("grpc_server_started", "Total number of RPCs started on the server.",
                                  labels=["grpc_method", "grpc_service", "grpc_type"])
    handled = CounterMetricFamily(
        "grpc_server_handled",
        "Total number of RPCs completed on the server, regardless of success or failure.",
        labels=["grpc_code", "grpc_method", "grpc_service", "grpc_type"])
    received = CounterMetricFamily("grpc_server_msg_received",
                                   "Total number of RPC stream messages received on the server.",
                                   labels=["grpc_method", "grpc_service", "grpc_type"])
    sent = CounterMetricFamily("grpc_server_msg_sent",
                               "Total number of gRPC stream messages sent by the server.",
                               labels=["grpc_method", "grpc_service", "grpc_type"])
    # The seed's names, which its operators' dashboards use: one counter and one histogram per
    # service, method and code.
    requests = CounterMetricFamily("etcd_grpc_requests", "Total number of gateway requests by gRPC service, "
                                   "method and code.", labels=["grpc_service", "grpc_method", "grpc_code"])
    latency = HistogramMetricFamily("etcd_grpc_request_duration_seconds",
                                    "Gateway request latency by gRPC service, method and code.",
                                    labels=["grpc_service", "grpc_method", "grpc_code"])
    for m in sorted(stats.by_method.values(), key=lambda m: (m.service, m.method)):
        started.add_metric([m.method, m.service, m.grpc_type], m.started)
        received.add_metric([m.method, m.service, m.grpc_type], m.received)
        sent.add_metric([m.method, m.service, m.grpc_type], m.sent)
        for code, name in enumerate(GRPC_CODES):
            hist = m.by_code[code]
            handled.add_metric([name, m.method, m.service, m.grpc_type], hist.count if hist else 0)
            if hist is not None:
                requests.add_metric([m.service, m.method, name], hist.count)
                latency.add_metric([m.service, m.method, name], hist.buckets(), hist.sum)
    yield from (started, handled, received, sent, requests, latency)
    yield CounterMetricFamily("etcd_network_client_grpc_received_bytes",
                              "The total number of bytes received from grpc clients.",
                              value=stats.bytes_received)
    yield CounterMetricFamily("etcd_network_client_grpc_sent_bytes",
                              "The total number of bytes sent to grpc clients.", value=stats.bytes_sent)


# ------------------------------------------------------------------ one member

DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024  # etcd's default --quota-backend-bytes


class ServerCollector:
    """The member's state, read when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        server = m.server
        node = server.node
        yield from _request_families(m.requests)
        yield _gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
                     1 if node.leader else 0)
        yield _gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
                     1 if node.is_leader else 0)
        me = server.membership.members.get(server.member_id)
        yield _gauge("etcd_server_is_learner",
                     "Whether or not this member is a learner. 1 if is, 0 otherwise.",
                     1 if me is not None and me.is_learner else 0)
        yield CounterMetricFamily("etcd_server_leader_changes_seen", "The number of leader changes seen.",
                                  value=server.leader_changes)
        yield _gauge("etcd_server_proposals_committed_total",
                     "The total number of consensus proposals committed.", node.commit_index)
        yield _gauge("etcd_server_proposals_applied_total",
                     "The total number of consensus proposals applied.", node.applied)
        yield _gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.",
                     server.pending_proposals)
        quota = server.config.quota_backend_bytes
        yield _gauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.",
                     DEFAULT_QUOTA_BYTES if quota == 0 else quota)
        yield _labelled("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' "
                        "label with current ID.", "server_id", f"{server.member_id:x}")
        yield _labelled("etcd_server_version", "Which version is running. 1 for 'server_version' label with "
                        "current version.", "server_version", server.version)
        cluster_version = server.cluster_version.minor_text()
        if cluster_version:
            yield _labelled("etcd_cluster_version", "Which version is running. 1 for 'cluster_version' label "
                            "with current cluster version", "cluster_version", cluster_version)
        yield from self._storage(server)

    def _storage(self, server: Any) -> Iterator[Metric]:
        store = server.store
        size = store.db_size()
        for name in ("etcd_mvcc_db_total_size_in_bytes", "etcd_debugging_mvcc_db_total_size_in_bytes"):
            yield _gauge(name, "Total size of the underlying database physically allocated in bytes.", size)
        yield _gauge("etcd_mvcc_db_total_size_in_use_in_bytes",
                     "Total size of the underlying database logically in use in bytes.", _live_bytes(store))
        yield _gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.", _key_count(store))
        yield _gauge("etcd_debugging_mvcc_current_revision", "The current revision of store.",
                     store.current_revision)
        yield _gauge("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in store.",
                     store.compact_revision)
        hub = server.watch_service.hub
        watchers = [*(w for group in hub.by_key.values() for w in group), *hub.ranges, *hub.unsynced]
        yield _gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", len(watchers))
        yield _gauge("etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.",
                     len(hub.unsynced))
        # Streams holding at least one watcher (the hub does not track idle streams).
        yield _gauge("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.",
                     len({id(w.stream) for w in watchers}))
        commit = self.metrics.backend_commit
        hist = HistogramMetricFamily("etcd_disk_backend_commit_duration_seconds",
                                     "The latency distributions of commit called by backend.")
        hist.add_metric([], commit.buckets(), commit.sum)
        yield hist
        applier = server.applier
        yield CounterMetricFamily("etcd_debugging_lease_granted", "The total number of granted leases.",
                                  value=applier.leases_granted)
        yield CounterMetricFamily("etcd_debugging_lease_revoked", "The total number of revoked leases.",
                                  value=applier.leases_revoked)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _labelled(name: str, doc: str, label: str, value: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    family.add_metric([value], 1)
    return family


def _live_bytes(store: Any) -> int:
    """RocksDB's estimate of live data (bbolt's in-use bytes is the nearest equivalent)."""
    total = 0
    for family in store.families.values():
        value = family.property_int_value("rocksdb.estimate-live-data-size")
        total += value or 0
    return min(total, store.db_size()) if total else store.db_size()


def _key_count(store: Any) -> int:
    """Keys in the current revision: RocksDB's estimate for the `latest` family (exact counting would
    read every key on each scrape)."""
    value = store.latest.property_int_value("rocksdb.estimate-num-keys")
    return int(value or 0)


class Metrics:
    """One member's metrics: its registry, the gateway's request statistics, the backend commit timer."""

    def __init__(self, server: Any) -> None:
        # `server` is the EtcdServer (typed Any: naming it here would make an import circle).
        self.server = server
        self.requests = RequestStats()
        self.backend_commit = FastHistogram(BACKEND_COMMIT_BUCKETS)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(GLOBAL)
        self.registry.register(ProcessCollector(pid=lambda: os.getpid(), registry=None))
        self.registry.register(ServerCollector(self))

    def render(self) -> bytes:
        return generate_latest(self.registry)
