"""/metrics: parses with prometheus-client's parser, carries etcd's names (checked against real etcd 3.4),
and its values follow what the member does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import Server, free_port, start_etcd, start_etcdpy

# The names issue 13 asks for. etcd_server_proposals_pending is etcd's name (it has no `_total`).
REQUIRED = [
    "etcd_server_has_leader", "etcd_server_leader_changes_seen_total", "etcd_server_health_failures",
    "etcd_server_proposals_committed_total", "etcd_server_proposals_applied_total",
    "etcd_server_proposals_pending", "etcd_server_proposals_failed_total",
    "etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds",
    "etcd_network_peer_round_trip_time_seconds", "etcd_network_peer_sent_bytes_total",
    "etcd_network_peer_received_bytes_total", "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes", "etcd_server_quota_backend_bytes",
    "etcd_debugging_mvcc_keys_total", "etcd_debugging_mvcc_watcher_total",
    "etcd_debugging_mvcc_watch_stream_total", "etcd_debugging_lease_granted_total",
    "process_resident_memory_bytes", "grpc_server_handled_total", "grpc_server_started_total",
    "etcd_grpc_requests_total", "etcd_grpc_request_duration_seconds",
]
# Names of etcdpy's own (the seed's request metrics) or that etcd emits only once a peer exists.
NOT_IN_SINGLE_ETCD = {
    "etcd_grpc_requests_total", "etcd_grpc_request_duration_seconds",
    "etcd_network_peer_round_trip_time_seconds", "etcd_network_peer_sent_bytes_total",
    "etcd_network_peer_received_bytes_total",
}


def families(text: str) -> dict[str, tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]]:
    """Exposition text -> {sample-family name as written: (type, {(sample name, labels): value})}."""
    out: dict[str, tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
    for fam in text_string_to_metric_families(text):
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in fam.samples}
        # The parser strips `_total` from counter family names; index by the name as exposed too.
        exposed = fam.name + "_total" if fam.type == "counter" else fam.name
        out[exposed] = (fam.type, samples)
        out.setdefault(fam.name, (fam.type, samples))
    return out


def value(fams: dict[str, tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]], name: str,
          sample: str | None = None, **labels: str) -> float:
    _, samples = fams[name]
    return samples[(sample or name, tuple(sorted(labels.items())))]


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    metrics_url = f"http://127.0.0.1:{free_port()}"
    server = start_etcdpy(tmp_path_factory.mktemp("metrics"), extra=["--listen-metrics-urls", metrics_url])
    try:
        yield server, metrics_url
    finally:
        server.stop()


def scrape(url: str) -> dict[str, tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]]:
    resp = httpx.get(f"{url}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return families(resp.text)


def test_every_required_name_is_exposed_on_both_listeners(member: tuple[Server, str]) -> None:
    server, metrics_url = member
    for url in (server.url, metrics_url):
        fams = scrape(url)
        missing = [name for name in REQUIRED if name not in fams]
        assert not missing, f"{url}/metrics lacks {missing}"


def test_names_and_types_are_etcds(member: tuple[Server, str], tmp_path: Path) -> None:
    """Every required etcd name exists in real etcd 3.4 with the same type (etcd's health counters have
    no `_total`, which prometheus-client can only write as gauges: the one difference allowed)."""
    etcd = start_etcd(tmp_path)
    try:
        theirs = families(httpx.get(f"{etcd.url}/metrics").text)
    finally:
        etcd.stop()
    ours = scrape(member[0].url)
    for name in REQUIRED:
        if name in NOT_IN_SINGLE_ETCD:
            continue
        assert name in theirs, f"{name} is not an etcd 3.4 metric"
        if name not in ("etcd_server_health_failures", "etcd_server_health_success"):
            assert ours[name][0] == theirs[name][0], f"{name}: ours {ours[name][0]}, etcd {theirs[name][0]}"
    # etcd's histogram buckets, where etcd declares them.
    def les(fams: dict[str, Any], name: str) -> list[str]:
        return sorted(dict(k[1])["le"] for k in fams[name][1] if k[0] == name + "_bucket")

    for name in ("etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds"):
        assert les(ours, name) == les(theirs, name), name


def test_values_follow_a_put(member: tuple[Server, str]) -> None:
    server, metrics_url = member
    before = scrape(metrics_url)
    with httpx.Client() as client:
        for i in range(3):
            resp = client.post(f"{server.url}/v3/kv/put", json={"key": f"bWV0cmljcy0{i}", "value": "dg=="})
            assert resp.status_code == 200
        bad = client.post(f"{server.url}/v3/kv/put", json={"key": ""})  # etcd: key is not provided
        assert bad.status_code == 400
    after = scrape(metrics_url)

    def delta(name: str, sample: str | None = None, **labels: str) -> float:
        return value(after, name, sample, **labels) - value(before, name, sample, **labels)

    put = {"grpc_method": "Put", "grpc_service": "etcdserverpb.KV", "grpc_type": "unary"}
    assert delta("grpc_server_handled_total", grpc_code="OK", **put) == 3
    assert delta("grpc_server_handled_total", grpc_code="InvalidArgument", **put) == 1
    assert delta("grpc_server_started_total", **put) == 4
    seed = {"grpc_method": "Put", "grpc_service": "etcdserverpb.KV", "grpc_code": "OK"}
    before_count = value(before, "etcd_grpc_request_duration_seconds",
                         "etcd_grpc_request_duration_seconds_count", **seed) if (
        "etcd_grpc_request_duration_seconds_count", tuple(sorted(seed.items()))
    ) in before["etcd_grpc_request_duration_seconds"][1] else 0
    assert value(after, "etcd_grpc_request_duration_seconds", "etcd_grpc_request_duration_seconds_count",
                 **seed) - before_count == 3
    assert delta("etcd_server_proposals_applied_total") >= 3
    assert delta("etcd_server_proposals_committed_total") >= 3
    assert delta("etcd_debugging_mvcc_keys_total") == 3
    assert delta("etcd_disk_wal_fsync_duration_seconds", "etcd_disk_wal_fsync_duration_seconds_count") >= 1
    assert delta("etcd_disk_backend_commit_duration_seconds",
                 "etcd_disk_backend_commit_duration_seconds_count") >= 3
    assert delta("etcd_network_client_grpc_received_bytes_total") > 0
    assert value(after, "etcd_server_has_leader") == 1
    assert value(after, "process_resident_memory_bytes") > 0
