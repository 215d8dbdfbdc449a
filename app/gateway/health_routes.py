"""The client listener's operational routes on the FastAPI app: `/health`, `/livez`, `/readyz`,
`/version`, `/debug/vars` and `/metrics`, each worded from health.py's one decision."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from etcdpy.app.gateway.dispatch import CORS
from etcdpy.app.gateway.health import Health, check, debug_vars, health_answer, query_flags, version_body
from etcdpy.app.server.metrics import CONTENT_TYPE

_CORS_HEADERS = {k.decode(): v.decode() for k, v in CORS}


def _response(health: Health, *, with_reason: bool) -> Response:
    status, headers, body = health_answer(health, with_reason=with_reason)
    return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})


def install(api: FastAPI, server: Any) -> None:
    """Add the operational endpoints to the client API (`server` None: described only, for OpenAPI)."""

    @api.get("/health", summary="Member health as etcd 3.4 reports it", response_class=Response)
    async def health(request: Request) -> Response:
        serializable, exclude = query_flags(request.scope.get("query_string", b""))
        return _response(await check(server, serializable=serializable, exclude=exclude), with_reason=False)

    @api.get("/livez", summary="Liveness (etcd 3.5): the process serves; NOSPACE does not count",
             response_class=Response)
    async def livez(request: Request) -> Response:
        serializable, exclude = query_flags(request.scope.get("query_string", b""))
        result = await check(server, serializable=serializable, exclude=exclude | {"NOSPACE"},
                             need_leader=False, endpoint="/livez")
        return _response(result, with_reason=True)

    @api.get("/readyz", summary="Readiness (etcd 3.5): no alarm and the API answers",
             response_class=Response)
    async def readyz(request: Request) -> Response:
        serializable, exclude = query_flags(request.scope.get("query_string", b""))
        result = await check(server, serializable=serializable, exclude=exclude, need_leader=False,
                             endpoint="/readyz")
        return _response(result, with_reason=True)

    @api.get("/version", summary="Server and cluster versions")
    async def version() -> JSONResponse:
        return JSONResponse(version_body(server), headers=_CORS_HEADERS)

    @api.get("/debug/vars", summary="Go expvar-style process and Raft variables", response_class=Response)
    async def vars_() -> Response:
        return Response(debug_vars(server), media_type="application/json; charset=utf-8",
                        headers=_CORS_HEADERS)

    @api.get("/metrics", summary="Prometheus metrics with etcd's names", response_class=Response)
    async def metrics() -> Response:
        return Response(server.metrics.render(), headers={**_CORS_HEADERS, "Content-Type": CONTENT_TYPE})
