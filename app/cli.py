"""The `etcdpy` command: parse etcd's flags, set up logging, open the member, serve its client URLs,
peer URLs and metrics URLs (and dispatch `etcdpy snapshot …` to `snapshot_cli.py`).

Every failure an operator can cause ends with one line on stderr and etcd's exit status: flag errors
as Go's flag package prints them, start-up failures as `etcdpy: <etcd's message>` (app/startup.py).
https URLs are served by their own uvicorn server with the context app/tls.py built; http URLs by a
plain one, so TLS costs the plain path nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
import ssl
import sys
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from etcdpy.app import interpreter, logs, usage
from etcdpy.app.config import Config, ConfigError, HelpRequested, VersionRequested, parse_args
from etcdpy.app.front.pool import WorkerPool, default_count, member_socket
from etcdpy.app.gateway.asgi import bare_gateway, create_app
from etcdpy.app.gateway.health import MetricsApp, version_body
from etcdpy.app.peer.transport import PeerApp, fetch_members, fetch_version
from etcdpy.app.server.cluster_version import VersionError, check_can_join
from etcdpy.app.server.etcd_server import VERSION, EtcdServer
from etcdpy.app.startup import StartupError, bind_all, check_data_dir_listable, open_server, touch_data_dir
from etcdpy.app.tls import prepare as prepare_tls
from etcdpy.app.tls_scope import expose_client_certs

log = logging.getLogger("etcdpy")


def _uvicorn(app: Any, config: Config, tls: ssl.SSLContext | None = None,
             client_certs: bool = False) -> uvicorn.Server:
    """A server for `app`; with `tls`, its sockets speak TLS, and with `client_certs` each request's scope
    carries the verified client certificate (app/tls_scope.py)."""
    server_config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_config=None,  # uvicorn's lines go through our handlers and format (--logger)
        log_level=logs.LEVELS.get(config.log_level, logging.INFO),
        timeout_graceful_shutdown=2,
    )
    if tls is not None:
        # uvicorn builds its context from file names; ours comes ready (etcd's checks, auto-tls, ciphers).
        server_config.load()
        server_config.ssl = tls
        if client_certs:
            expose_client_certs(server_config)
    return uvicorn.Server(server_config)


def _by_scheme(urls: list[str], bound: list[socket.socket]) -> dict[bool, list[socket.socket]]:
    """The listen URLs' sockets, https (True) apart from http (False): each group is one uvicorn server.
    Every socket is also appended to `bound`, so the caller can close them all on a failure."""
    groups: dict[bool, list[socket.socket]] = {}
    for url in urls:
        groups.setdefault(urlsplit(url).scheme == "https", []).extend(bind_all([url], bound))
    return groups


async def _join_info(config: Config, peer_ssl: ssl.SSLContext | None) -> dict[str, Any] | None:
    """For --initial-cluster-state existing: learn our id and the cluster's from a running member."""
    if config.initial_cluster_state != "existing":
        return None
    if os.path.exists(os.path.join(config.data_dir, "member", "wal")):
        return None  # restarting: the WAL knows who we are
    others = [url for name, urls in config.cluster_members.items() if name != config.name for url in urls]
    mine = sorted(config.initial_advertise_peer_urls)
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        info = await fetch_members(others, peer_ssl)
        if info is not None:
            # etcd's isCompatibleWithCluster: never join a cluster running a version above ours.
            check_can_join(config.experimental_advertise_version or VERSION,
                           [(0, info.get("cluster_version", ""))], *info.get("downgrade", (False, "")))
            for member in info["members"]:
                if sorted(member[2]) == mine:
                    return {"member_id": member[0], "cluster_id": info["cluster_id"]}
            raise ConfigError(f"no member with peer URLs {mine} in the cluster: add it with member add first")
        if asyncio.get_running_loop().time() > deadline:
            raise ConfigError("could not reach any member of --initial-cluster to join it")
        await asyncio.sleep(0.5)


async def serve(config: Config) -> None:
    # etcd's order: check the security flags, list the data dir, bind peer then client URLs, then create
    # and open the data dir.
    tls = prepare_tls(config)
    check_data_dir_listable(config.data_dir)
    bound: list[socket.socket] = []
    pool: WorkerPool | None = None
    try:
        peer_groups = _by_scheme(config.listen_peer_urls, bound)
        client_groups = _by_scheme(config.listen_client_urls, bound)
        metrics_sockets = bind_all(config.listen_metrics_urls, bound)
        # Front workers take the plain-HTTP client sockets; this process then serves its private
        # socket. They start now, so that their start-up overlaps opening the data dir.
        workers = config.client_workers if config.client_workers >= 0 else default_count()
        if workers > 0 and False in client_groups:
            private, name = member_socket()
            bound.append(private)
            pool = WorkerPool(workers, client_groups[False], name, bare_gateway(config.cors))
            client_groups[False] = [private]
        touch_data_dir(config.data_dir)
        if pool is not None:
            pool.launch()
        server = await open_server(config, await _join_info(config, tls.peer_client), tls.peer_client)
    except BaseException:
        if pool is not None:
            pool.abort()
        for sock in bound:
            sock.close()
        raise
    client_app = create_app(server)
    peer_app = PeerApp(
        step=server.node.step,
        receive_snapshot=server.receive_snapshot,
        members=lambda: {
            "cluster_id": server.cluster_id,
            "members": [[m.id, m.name, m.peer_urls, m.client_urls, m.is_learner]
                        for m in server.membership.sorted_members()],
            "cluster_version": server.cluster_version.value,
            "downgrade": _downgrade(server),
        },
        snapshot_dir=os.path.join(server.member_dir, "snap"),
        is_removed=lambda member: member in server.membership.removed,
        add_remote=server.add_remote_peer,
        client_app=client_app,
        version=lambda: version_body(server),
    )
    server.fetch_version = functools.partial(fetch_version, ssl=tls.peer_client)
    # The first client server runs in the foreground; the others stop when it does.
    clients = [(_uvicorn(client_app, config, tls.client if https else None, tls.client_cert_auth), socks)
               for https, socks in client_groups.items()]
    others = [(_uvicorn(peer_app, config, tls.peer if https else None), socks)
              for https, socks in peer_groups.items()] + clients[1:]
    if metrics_sockets:
        others.append((_uvicorn(MetricsApp(server), config), metrics_sockets))
    client_server, client_sockets = clients[0]
    server.start()
    # Streams (watch, SSE) end with a last word as soon as a shutdown begins, not when cut at its end.
    server.watch_service.watch_exit(lambda: any(s.should_exit for s, _ in clients))
    log.info("member %x serving clients on %s, peers on %s", server.member_id,
             ", ".join(config.listen_client_urls), ", ".join(config.listen_peer_urls))
    background = [(other, asyncio.create_task(other.serve(sockets=socks))) for other, socks in others]
    interpreter.freeze_startup_objects()
    # uvicorn re-raises the signal that stopped it once its serve() returns, with the handler that was
    # in place before: Python's default would kill the process (SIGTERM) or raise KeyboardInterrupt
    # (SIGINT) before the member is stopped and its database closed (memtables flushed, so the next
    # start has nothing to replay). Remember it instead; main() re-raises it after the cleanup.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _remember_signal)
    try:
        if pool is not None:
            await pool.start(client_app)
        await client_server.serve(sockets=client_sockets)
    finally:
        if pool is not None:
            await pool.stop()
        peer_app.close()
        for other, _ in background:
            other.should_exit = True
        for _, task in background:
            await task
        await server.stop()
        server.close()


_stopped_by: list[int] = []


def _remember_signal(signum: int, frame: object) -> None:
    _stopped_by.append(signum)


def _exit_as_signalled() -> None:
    """Die of the signal that stopped the member, as etcd does (its exit status shows the signal)."""
    if _stopped_by:
        signal.signal(_stopped_by[0], signal.SIG_DFL)
        os.kill(os.getpid(), _stopped_by[0])


def _downgrade(server: EtcdServer) -> tuple[bool, str]:
    """The downgrade job as a joining member needs it (etcd 3.5)."""
    return server.downgrade.enabled, server.downgrade.target


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["snapshot"]:
        # `etcdpy snapshot save|status|restore` (etcdctl's and etcdutl's snapshot commands); every other
        # command line is the server's etcd flags.
        from etcdpy.app import snapshot_cli

        sys.exit(snapshot_cli.main(args[1:]))
    # Before the flags are parsed only a config file's warnings can be logged.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = parse_args(args)
    except HelpRequested:
        sys.stdout.write(usage.usage())
        sys.exit(0)
    except VersionRequested:
        sys.stdout.write(usage.version())
        sys.exit(0)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
    logs.setup(config.logger, config.log_outputs, config.log_level, config.name)
    interpreter.tune()
    try:
        asyncio.run(serve(config))
        _exit_as_signalled()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
    except VersionError as exc:
        # etcd: a fatal line with the reason, exit status 1.
        log.critical("%s", exc)
        sys.exit(1)
    except StartupError as exc:
        print(f"etcdpy: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
