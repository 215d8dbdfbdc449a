"""Distributed lock and leader election: ``lock`` and ``elect`` over /v3/lock and /v3/election.

Like etcdctl, both hold a session lease (kept alive in the background) for as long as the command
runs; SIGINT/SIGTERM releases the lock (or resigns) and revokes the lease. ``lock name cmd…`` runs the
command while holding the lock and exits with its status.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from types import FrameType

import click

from etcdpy.app.ctl.client import JSON, GatewayClient, b64, unb64
from etcdpy.app.ctl.context import bad_args, ctl

ARGS = click.argument("args", nargs=-1)


class Session:
    """A lease plus a keep-alive thread, like clientv3/concurrency.Session."""

    def __init__(self, client: GatewayClient, ttl: int) -> None:
        self.client = client
        self.lease = int(client.call("/v3/lease/grant", {"TTL": str(ttl)})["ID"])
        self.ttl = ttl
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._keepalive, daemon=True)
        self.thread.start()

    def _keepalive(self) -> None:
        while not self.stop.wait(max(self.ttl / 3.0, 0.5)):
            try:
                list(self.client.stream("/v3/lease/keepalive", json.dumps({"ID": str(self.lease)}).encode(),
                                        read_timeout=5.0))
            except Exception:  # noqa: BLE001 - a failed renewal is retried on the next tick
                continue

    def close(self) -> None:
        self.stop.set()
        try:
            self.client.call("/v3/lease/revoke", {"ID": str(self.lease)})
        except Exception:  # noqa: BLE001 - the lease expires on its own anyway
            pass


def _wait_for_signal() -> None:
    done = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not done.wait(0.5):
        pass


@click.command("lock")
@click.option("--ttl", default=10, type=int, help="timeout for session")
@ARGS
def lock(args: tuple[str, ...], ttl: int) -> None:
    """Acquires a named lock."""
    if not args:
        raise bad_args("lock takes a lock name argument and an optional command to execute")
    client = ctl().client()
    session = Session(client, ttl)
    try:
        resp = client.call("/v3/lock/lock", {"name": b64(args[0]), "lease": str(session.lease)})
        key = unb64(resp.get("key"))
        if len(args) > 1:
            env = {**os.environ, "ETCD_LOCK_KEY": key.decode("utf-8", "replace")}
            code = subprocess.run(list(args[1:]), check=False, env=env).returncode
            client.call("/v3/lock/unlock", {"key": b64(key)})
            sys.exit(code)
        # etcdctl prints the lock key's KeyValue (key, then its empty value) in the -w format.
        ctl().printer().get(client.call("/v3/kv/range", {"key": b64(key)}))
        sys.stdout.flush()
        _wait_for_signal()
        client.call("/v3/lock/unlock", {"key": b64(key)})
    finally:
        session.close()


@click.command("elect")
@click.option("-l", "--listen", is_flag=True, help="observation mode")
@ARGS
def elect(args: tuple[str, ...], listen: bool) -> None:
    """Observes and participates in leader election."""
    if len(args) != 1 and len(args) != 2:
        raise bad_args("elect takes one election name argument and an optional proposal argument.")
    name, proposal = args[0], args[1] if len(args) == 2 else None
    if not listen and proposal is None:
        raise bad_args("no proposal argument but -l not set")
    client = ctl().client()
    printer = ctl().printer()
    if listen:
        for msg in client.stream("/v3/election/observe", {"name": b64(name)}, read_timeout=None):
            printer.get({"header": msg.get("header", {}), "kvs": [msg["kv"]] if msg.get("kv") else []})
            sys.stdout.flush()
        return
    session = Session(client, 60)
    try:
        resp = client.call("/v3/election/campaign", {"name": b64(name), "lease": str(session.lease),
                                                      "value": b64(proposal or "")})
        leader: JSON = resp.get("leader", {})
        printer.get(client.call("/v3/kv/range", {"key": leader.get("key", "")}))
        sys.stdout.flush()
        _wait_for_signal()
        client.call("/v3/election/resign", {"leader": leader})
    finally:
        session.close()
