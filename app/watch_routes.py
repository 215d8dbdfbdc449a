"""Registers the watch and lease endpoints: gateway routes, the WebSocket and the SSE endpoint."""

from __future__ import annotations

from fastapi import FastAPI, WebSocket

from app import gateway, learner_gate, lease_api, watch_sse
from app.server import EtcdServer
from app.watch_api import watch_stream
from app.watch_ws import watch_websocket


def install(api: FastAPI, server: EtcdServer | None) -> None:
    """Register everything; without a server (OpenAPI export) only the documented FastAPI routes."""
    gateway.ROUTES.update({
        "/v3/lease/grant": lease_api.lease_grant,
        "/v3/lease/revoke": lease_api.lease_revoke,
        "/v3/kv/lease/revoke": lease_api.lease_revoke,
        "/v3/lease/timetolive": lease_api.lease_time_to_live,
        "/v3/kv/lease/timetolive": lease_api.lease_time_to_live,
        "/v3/lease/leases": lease_api.lease_leases,
        "/v3/kv/lease/leases": lease_api.lease_leases,
    })
    gateway.STREAM_ROUTES.update({
        "/v3/watch": watch_stream,
        "/v3/lease/keepalive": lease_api.lease_keepalive_stream,
    })
    gateway.OWN_PREFLIGHT.add(watch_sse.SSE_PATH)
    if server is None:
        watch_sse.install(api, None, "*")
        return
    service = server.watch_service

    async def ws_endpoint(websocket: WebSocket) -> None:
        if learner_gate.is_learner(server):
            # What etcd's WebSocket proxy relays when the watch stream is refused: the stream error.
            await websocket.accept()
            await websocket.send_text(learner_gate.stream_error_json(learner_gate.NOT_SUPPORTED_FOR_LEARNER)
                                      .decode())
            await websocket.close()
            return
        await watch_websocket(websocket, service)

    for path in ("/v3/watch", "/v3beta/watch"):
        api.add_api_websocket_route(path, ws_endpoint)
    watch_sse.install(api, service, server.config.cors)
