"""The `etcdpy` command: parse etcd's flags, open the member, serve its client URLs."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from etcdpy.app.config import Config, ConfigError, parse_args
from etcdpy.app.gateway.asgi import create_app
from etcdpy.app.peer.transport import PeerApp, fetch_members
from etcdpy.app.server.etcd_server import DataDirError, EtcdServer
from etcdpy.storage.wal import WalCorruptError

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


def _uvicorn(app: Any, config: Config) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level=config.log_level,
        timeout_graceful_shutdown=2,
    ))


async def _join_info(config: Config) -> dict[str, Any] | None:
    """For --initial-cluster-state existing: learn our id and the cluster's from a running member."""
    if config.initial_cluster_state != "existing":
        return None
    if os.path.exists(os.path.join(config.data_dir, "member", "wal")):
        return None  # restarting: the WAL knows who we are
    others = [url for name, urls in config.cluster_members.items() if name != config.name for url in urls]
    mine = sorted(config.initial_advertise_peer_urls)
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        info = await fetch_members(others)
        if info is not None:
            for member in info["members"]:
                if sorted(member[2]) == mine:
                    return {"member_id": member[0], "cluster_id": info["cluster_id"]}
            raise ConfigError(f"no member with peer URLs {mine} in the cluster: add it with member add first")
        if asyncio.get_running_loop().time() > deadline:
            raise ConfigError("could not reach any member of --initial-cluster to join it")
        await asyncio.sleep(0.5)


async def serve(config: Config) -> None:
    server = EtcdServer(config, joined=await _join_info(config))
    client_app = create_app(server)
    client_server = _uvicorn(client_app, config)
    peer_app = PeerApp(
        step=server.node.step,
        receive_snapshot=server.receive_snapshot,
        members=lambda: {
            "cluster_id": server.cluster_id,
            "members": [[m.id, m.name, m.peer_urls, m.client_urls, m.is_learner]
                        for m in server.membership.sorted_members()],
        },
        snapshot_dir=os.path.join(server.member_dir, "snap"),
        is_removed=lambda member: member in server.membership.removed,
        add_remote=server.add_remote_peer,
        client_app=client_app,
    )
    peer_server = _uvicorn(peer_app, config)
    client_sockets = [_bind(url) for url in config.listen_client_urls]
    peer_sockets = [_bind(url) for url in config.listen_peer_urls]
    server.start()
    # Streams (watch, SSE) end with a last word as soon as a shutdown begins, not when cut at its end.
    server.watch_service.watch_exit(lambda: client_server.should_exit)
    log.info("member %x serving clients on %s, peers on %s", server.member_id,
             ", ".join(config.listen_client_urls), ", ".join(config.listen_peer_urls))
    peers = asyncio.create_task(peer_server.serve(sockets=peer_sockets))
    try:
        await client_server.serve(sockets=client_sockets)
    finally:
        peer_server.should_exit = True
        await peers
        await server.stop()
        server.close()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    except DataDirError as exc:
        print(f"etcdpy: {exc}", file=sys.stderr)
        sys.exit(1)
    except WalCorruptError as exc:
        # etcd: "failed to read WAL, cannot be repaired" with walpb's error, and exit status 1.
        print(f"etcdpy: failed to read WAL, cannot be repaired: {exc}", file=sys.stderr)
        sys.exit(1)
