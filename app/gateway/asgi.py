"""Builds the ASGI application: the lean v3 gateway, with its one route table, in front of a FastAPI app
for everything else (health, version, the watch WebSocket and SSE, the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse

from etcdpy.app.gateway import auth, cluster, election, election_sse, kv, lease, lock, maintenance
from etcdpy.app.gateway.dispatch import CORS, Gateway, Routes
from etcdpy.app.gateway.openapi_doc import build_openapi
from etcdpy.app.gateway.watch import sse
from etcdpy.app.gateway.watch.encode import Encoder
from etcdpy.app.gateway.watch.stream import watch_stream
from etcdpy.app.gateway.watch.websocket import watch_websocket
from etcdpy.app.server.etcd_server import CLUSTER_VERSION, VERSION, EtcdServer

_CORS_HEADERS = {k.decode(): v.decode() for k, v in CORS}


def gateway_routes() -> Routes:
    """Every `/v3/` route the gateway serves (`/v3beta/` is an alias), by service."""
    return Routes(
        rpcs={**kv.RPCS, **lease.RPCS, **cluster.RPCS, **maintenance.RPCS, **lock.RPCS, **election.RPCS,
              **auth.RPCS},
        streams={"/v3/watch": watch_stream, **lease.STREAMS, **maintenance.STREAMS, **lock.STREAMS,
                 **election.STREAMS},
        own_preflight=frozenset({sse.SSE_PATH, election_sse.SSE_PATH}),
    )


def create_app(server: EtcdServer) -> Gateway:
    return Gateway(server, create_api(server), gateway_routes())


def create_api(server: EtcdServer | None) -> FastAPI:
    """The FastAPI app behind the gateway; without a server it still describes itself (OpenAPI export)."""
    api = FastAPI(
        title="etcdpy",
        version=VERSION,
        description="etcd's v3 JSON gateway, served by etcdpy.",
        docs_url="/docs",
        redoc_url=None,
    )

    @api.get("/health", response_class=PlainTextResponse, summary="Member health as etcd reports it")
    async def health() -> PlainTextResponse:
        # etcd reports a member healthy only while the cluster has a leader and no alarm is active.
        healthy = server is not None and server.node.leader != 0 and not server.alarms.active
        if healthy:
            return PlainTextResponse('{"health":"true"}', headers=_CORS_HEADERS)
        # etcd answers an unhealthy member with Go's http.Error: a trailing newline and nosniff.
        return PlainTextResponse('{"health":"false"}\n', status_code=503,
                                 headers={**_CORS_HEADERS, "X-Content-Type-Options": "nosniff"})

    @api.get("/version", summary="Server and cluster versions")
    async def version() -> JSONResponse:
        return JSONResponse({"etcdserver": VERSION, "etcdcluster": CLUSTER_VERSION}, headers=_CORS_HEADERS)

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = build_openapi(api)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    if server is None:
        sse.install(api, None, "*")
        election_sse.install(api, None, "*")
        return api
    service = server.watch_service
    encoder = Encoder(server)

    async def ws_endpoint(websocket: WebSocket) -> None:
        await watch_websocket(websocket, service, encoder, server.auth)

    for path in ("/v3/watch", "/v3beta/watch"):
        api.add_api_websocket_route(path, ws_endpoint)
    sse.install(api, service, server.config.cors, server.auth)
    election_sse.install(api, server, server.config.cors)
    return api
