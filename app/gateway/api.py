"""The FastAPI app behind the lean v3 gateway: health, version, metrics, the watch WebSocket and SSE, the
election SSE, the plain REST view, the dashboard, the OpenAPI document and its offline Swagger UI.

It is built on the first request that needs it (app/gateway/asgi.py): importing FastAPI and pydantic is
most of a restart's time, and etcd's API under `/v3/` needs neither.
"""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import FastAPI, WebSocket
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from etcdpy.app.gateway import election_sse, health_routes, learner_gate, rest_kv, ui
from etcdpy.app.gateway.openapi_doc import build_openapi
from etcdpy.app.gateway.watch import sse
from etcdpy.app.gateway.watch.encode import Encoder
from etcdpy.app.gateway.watch.websocket import watch_websocket
from etcdpy.app.server.etcd_server import VERSION, EtcdServer

DOCS_ASSETS = "/docs/static"  # Swagger UI's files, served from the installed swagger-ui-bundle package


def create_api(server: EtcdServer | None) -> FastAPI:
    """The FastAPI app behind the gateway; without a server it still describes itself (OpenAPI export)."""
    api = FastAPI(
        title="etcdpy",
        version=VERSION,
        description="etcd's v3 JSON gateway, served by etcdpy.",
        docs_url=None,  # served below from local assets: /docs must work without the Internet
        redoc_url=None,
    )
    health_routes.install(api, server)

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
