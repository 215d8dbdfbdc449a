"""The `etcdpy` command: parse etcd's flags, open the member, serve its client URLs."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from urllib.parse import urlsplit

import uvicorn

from app.asgi import create_app
from app.config import Config, ConfigError, parse_args
from app.server import EtcdServer

log = logging.getLogger("etcdpy")


def _bind(url: str) -> socket.socket:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or (2379 if parts.scheme == "http" else 2379)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(config: Config) -> None:
    server = EtcdServer(config)
    app = create_app(server)
    sockets = [_bind(url) for url in config.listen_client_urls]
    uv_config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level=config.log_level,
        timeout_graceful_shutdown=2,
    )
    uv = uvicorn.Server(uv_config)
    server.resume_background_work()
    log.info("serving client requests on %s", ", ".join(config.listen_client_urls))
    try:
        await uv.serve(sockets=sockets)
    finally:
        server.close()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(config))
