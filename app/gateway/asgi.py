"""Builds the ASGI application: the lean v3 gateway, with its one route table, in front of the FastAPI
app for everything else (app/gateway/api.py), which is imported and built on the first request that
needs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from etcdpy.app.gateway import auth, cluster, election, grpc_names, kv, lease, lock, maintenance
from etcdpy.app.gateway.cors import Cors, CorsFilter
from etcdpy.app.gateway.dispatch import Gateway, Routes
from etcdpy.app.gateway.sse_paths import ELECTION_SSE_PATH, WATCH_SSE_PATH
from etcdpy.app.gateway.watch.stream import watch_stream
from etcdpy.app.server.etcd_server import EtcdServer

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


def gateway_routes() -> Routes:
    """Every `/v3/` route the gateway serves (`/v3beta/` is an alias), by service."""
    return Routes(
        rpcs={**kv.RPCS, **lease.RPCS, **cluster.RPCS, **maintenance.RPCS, **lock.RPCS, **election.RPCS,
              **auth.RPCS},
        streams={"/v3/watch": watch_stream, **lease.STREAMS, **maintenance.STREAMS, **lock.STREAMS,
                 **election.STREAMS},
        own_preflight=frozenset({WATCH_SSE_PATH, ELECTION_SSE_PATH}),
        decoded=kv.DECODED,
        proposals=kv.PROPOSALS,
        bounded_streams=lease.BOUNDED_STREAMS,
    )


def create_app(server: EtcdServer) -> ASGIApp:
    """The client URLs' app: the gateway, and etcd's `--cors` on every answer when it lists origins."""
    routes = gateway_routes()
    server.metrics.requests.configure(grpc_names.names, [*routes.rpcs, *routes.streams])
    gateway = Gateway(server, DeferredApi(server), routes)
    if bare_gateway(server.config.cors):
        return gateway
    return CorsFilter(gateway, Cors(server.config.cors))


def bare_gateway(cors: str) -> bool:
    """Whether create_app gives the gateway itself, with no CORS filter in front: `--cors` allows every
    origin (etcd's default), so every answer carries the same headers."""
    return Cors(cors).allow_all


class DeferredApi:
    """The FastAPI app (api.py), built on first use. Importing FastAPI and pydantic took more of a
    restart than everything else; a member that only serves `/v3/` never pays it, and the first health
    probe or dashboard visit pays it once (about a fifth of a second here)."""

    def __init__(self, server: EtcdServer) -> None:
        self._server = server
        self._app: ASGIApp | None = None

    def app(self) -> ASGIApp:
        if self._app is None:
            from etcdpy.app.gateway.api import create_api

            self._app = create_api(self._server)
        return self._app

    @property
    def routes(self) -> list[BaseRoute]:
        """The app's routes, which the gateway asks to tell its own 404 from the app's."""
        routes: list[BaseRoute] = self.app().routes  # type: ignore[attr-defined]
        return routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app()(scope, receive, send)
