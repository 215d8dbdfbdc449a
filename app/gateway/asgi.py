"""Builds the ASGI application: the lean v3 gateway, with its one route table, in front of a FastAPI app
for everything else (health, version, metrics, the watch WebSocket and SSE, the OpenAPI document and its
offline Swagger UI)."""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import FastAPI, WebSocket
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from etcdpy.app.gateway import (
    auth,
    cluster,
    election,
    election_sse,
    grpc_names,
    health,
    kv,
    learner_gate,
    lease,
    lock,
    maintenance,
    rest_kv,
    ui,
)
from etcdpy.app.gateway.cors import Cors, CorsFilter
from etcdpy.app.gateway.dispatch import Gateway, Routes
from etcdpy.app.gateway.openapi_doc import build_openapi
from etcdpy.app.gateway.watch import sse
from etcdpy.app.gateway.watch.encode import Encoder
from etcdpy.app.gateway.watch.stream import watch_stream
from etcdpy.app.gateway.watch.websocket import watch_websocket
from etcdpy.app.server.etcd_server import VERSION, EtcdServer

DOCS_ASSETS = "/docs/static"  # Swagger UI's files, served from the installed swagger-ui-bundle package


def gateway_routes() -> Routes:
    """Every `/v3/` route the gateway serves (`/v3beta/` is an alias), by service."""
    return Routes(
        rpcs={**kv.RPCS, **lease.RPCS, **cluster.RPCS, **maintenance.RPCS, **lock.RPCS, **election.RPCS,
              **auth.RPCS},
        streams={"/v3/watch": watch_stream, **lease.STREAMS, **maintenance.STREAMS, **lock.STREAMS,
                 **election.STREAMS},
        own_preflight=frozenset({sse.SSE_PATH, election_sse.SSE_PATH}),
        decoded=kv.DECODED,
        bounded_streams=lease.BOUNDED_STREAMS,
    )


def create_app(server: EtcdServer) -> ASGIApp:
    """The client URLs' app: the gateway, and etcd's `--cors` on every answer when it lists origins."""
    routes = gateway_routes()
    server.metrics.requests.configure(grpc_names.names, [*routes.rpcs, *routes.streams])
    gateway = Gateway(server, create_api(server), routes)
    cors = Cors(server.config.cors)
    return gateway if cors.allow_all else CorsFilter(gateway, cors)


def create_api(server: EtcdServer | None) -> FastAPI:
    """The FastAPI app behind the gateway; without a server it still describes itself (OpenAPI export)."""
    api = FastAPI(
        title="etcdpy",
        version=VERSION,
        description="etcd's v3 JSON gateway, served by etcdpy.",
        docs_url=None,  # served below from local assets: /docs must work without the Internet
        redoc_url=None,
    )
    health.install(api, server)

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=api.openapi_url or "/openapi.json", title=f"{api.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png")

    api.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = build_openapi(api)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    ui.install(api, server)
    rest_kv.install(api, server)
    if server is None:
        sse.install(api, None, "*")
        election_sse.install(api, None, "*")
        return api
    service = server.watch_service
    encoder = Encoder(server)

    async def ws_endpoint(websocket: WebSocket) -> None:
        if server.is_learner():
            # What etcd's WebSocket proxy relays when the watch stream is refused: the stream error.
            await websocket.accept()
            refused = learner_gate.NOT_SUPPORTED_FOR_LEARNER
            await websocket.send_text(learner_gate.stream_error_json(refused).decode())
            await websocket.close()
            return
        await watch_websocket(websocket, service, encoder, server.auth)

    for path in ("/v3/watch", "/v3beta/watch"):
        api.add_api_websocket_route(path, ws_endpoint)
    sse.install(api, service, server.config.cors, server.auth, server.is_learner)
    election_sse.install(api, server, server.config.cors)
    return api
