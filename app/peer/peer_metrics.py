"""Member-to-member traffic metrics, with etcd's rafthttp names, labels (`To`, `From`: peer ids in hex)
and buckets. The transport updates them; `etcdpy.app.server.metrics` exposes them with the member's other
metrics. The round trip timed is from a stream frame's write to the peer's acknowledgment (which comes
at most every 10 ms; etcd times a prober's ping), or a POST's, for a peer without streams."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_OWN = CollectorRegistry(auto_describe=True)  # keeps these off prometheus-client's default registry

SENT_BYTES = Counter("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.",
                     ["To"], registry=_OWN)
RECEIVED_BYTES = Counter("etcd_network_peer_received_bytes_total",
                         "The total number of bytes received from peers.", ["From"], registry=_OWN)
SENT_FAILURES = Counter("etcd_network_peer_sent_failures_total",
                        "The total number of send failures from peers.", ["To"], registry=_OWN)
ROUND_TRIP = Histogram("etcd_network_peer_round_trip_time_seconds",
                       "Round-Trip-Time histogram between peers.", ["To"],
                       buckets=[0.0001 * 2**i for i in range(16)], registry=_OWN)

COLLECTORS = (SENT_BYTES, RECEIVED_BYTES, SENT_FAILURES, ROUND_TRIP)


def peer_label(peer_id: int) -> str:
    """etcd's types.ID.String(): lowercase hex without leading zeros."""
    return f"{peer_id:x}"
