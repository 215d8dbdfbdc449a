"""Builds the ASGI application: the lean v3 gateway in front of a FastAPI app for everything else."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from app.cluster_api import install as install_cluster_routes
from app.gateway import CORS, Gateway
from app.openapi_doc import build_openapi
from app.server import CLUSTER_VERSION, VERSION, EtcdServer
from app.watch_routes import install as install_watch_routes

_CORS_HEADERS = {k.decode(): v.decode() for k, v in CORS}


def create_app(server: EtcdServer) -> Gateway:
    return Gateway(server, create_api(server))


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
        # etcd reports a member healthy only while the cluster has a leader.
        healthy = server is not None and server.node.leader != 0
        body = '{"health":"true"}' if healthy else '{"health":"false"}'
        return PlainTextResponse(body, status_code=200 if healthy else 503, headers=_CORS_HEADERS)

    @api.get("/version", summary="Server and cluster versions")
    async def version() -> JSONResponse:
        return JSONResponse({"etcdserver": VERSION, "etcdcluster": CLUSTER_VERSION}, headers=_CORS_HEADERS)

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = build_openapi(api)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    install_cluster_routes()  # /v3/cluster/member/*, /v3/maintenance/{status,transfer-leadership}
    install_watch_routes(api, server)  # /v3/watch (+ WebSocket), /v3/lease/*, SSE (app/watch_routes.py)
    return api
