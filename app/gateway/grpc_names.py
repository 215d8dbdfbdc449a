"""Each gateway path's gRPC names (service, method, call type), as etcd's metrics label its RPCs.

The gateway serves etcd's gRPC services over HTTP; operators' dashboards group requests by the gRPC
service and method they were, so the metrics use those names (`etcdserverpb.KV`, `Range`, `unary`).
"""

from __future__ import annotations

from etcdpy.app.gateway.schema import RPCS

_SERVICES = {
    "kv": "etcdserverpb.KV", "lease": "etcdserverpb.Lease", "cluster": "etcdserverpb.Cluster",
    "maintenance": "etcdserverpb.Maintenance", "auth": "etcdserverpb.Auth", "watch": "etcdserverpb.Watch",
    "lock": "v3lockpb.Lock", "election": "v3electionpb.Election",
}
# The few methods whose name is not their request message's.
_METHODS = {"/v3/kv/compaction": "Compact", "/v3/election/observe": "Observe",
            "/v3/maintenance/snapshot": "Snapshot"}
_STREAM_TYPES = {"Watch": "bidi_stream", "LeaseKeepAlive": "bidi_stream", "Observe": "server_stream",
                 "Snapshot": "server_stream"}
_REQUESTS = {rpc.path: rpc.request for rpc in RPCS}


def names(path: str) -> tuple[str, str, str]:
    """(grpc_service, grpc_method, grpc_type) for a `/v3/…` path (its `/v3beta/` alias is the same)."""
    if path.startswith("/v3beta/"):
        path = "/v3/" + path[len("/v3beta/"):]
    parts = path.strip("/").split("/")[1:]
    if parts[:2] == ["kv", "lease"]:  # /v3/kv/lease/… are the Lease service's aliases
        parts = parts[1:]
    service = _SERVICES.get(parts[0] if parts else "", "etcdserverpb.Unknown")
    method = _METHODS.get(path)
    if method is None:
        request = _REQUESTS.get(path, "")
        if request.endswith("Request"):
            method = request.removesuffix("Request")
        else:  # a route the schema does not describe: its path, in Go's method case
            method = "".join(p.replace("-", " ").title().replace(" ", "") for p in parts[1:]) or service
    return service, method, _STREAM_TYPES.get(method, "unary")
