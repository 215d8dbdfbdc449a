"""Builds the ASGI application: the lean v3 gateway in front of a FastAPI app for everything else."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from app.gateway import CORS, Gateway
from app.openapi_doc import build_openapi
from app.server import CLUSTER_VERSION, VERSION, EtcdServer

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
        return PlainTextResponse('{"health":"true"}', headers=_CORS_HEADERS)

    @api.get("/version", summary="Server and cluster versions")
    async def version() -> JSONResponse:
        return JSONResponse({"etcdserver": VERSION, "etcdcluster": CLUSTER_VERSION}, headers=_CORS_HEADERS)

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = build_openapi(api)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api
