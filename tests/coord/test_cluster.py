"""Locks and elections on a 3-member etcdpy cluster under faults.

Contention: workers lock and unlock one name through random members while some lock holders "die"
(they stop keeping their lease alive and never unlock, so the lease expires and takes the key) and the
leader is killed. The history of the lock's keys, read back from the watch history, must show mutual
exclusion by revision: a holder's key is deleted at or before the revision at which the next holder
learned it holds the lock. No attempt on a live member may wait past its bound (Grpc-Timeout).

Election: observers on every member see the same sequence of leaders, in order, while candidates
campaign on different members and leaders resign or lose their lease.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from tests.cluster.conftest import ClusterFactory
from tests.cluster.harness import Cluster, RpcError, b64, rpc, unb64, wait_for
from tests.stream_client import StreamConn

NAME = "mutex"
WORKERS = 6
RUN_S = 14.0
KILL_AT_S = 5.0
LEASE_TTL = 2
LOCK_BOUND_S = 20.0  # a waiter ahead of at most WORKERS-1 others, each gone within a lease TTL
DIE_P = 0.2


@dataclass
class Acquired:
    key: str
    create_rev: int
    acquired_rev: int  # the header revision of the lock answer: when the holder learned it holds


class Keeper:
    """Keeps a worker's current lease alive until told to stop (a holder that dies stops it)."""

    def __init__(self, cluster: Cluster, lease: int) -> None:
        self.cluster = cluster
        self.lease = lease
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=1.0) as client:
            while not self.stop.wait(0.3):
                for name in self.cluster.live():
                    try:
                        client.post(f"{self.cluster.url(name)}/v3/lease/keepalive", json={"ID": self.lease})
                        break
                    except httpx.HTTPError:
                        continue


def _worker(cluster: Cluster, wid: int, deadline: float, rng: random.Random,
            acquired: list[Acquired], starved: list[str], lock: threading.Lock) -> None:
    with httpx.Client() as client:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            lease = (wid << 20) + n
            live = cluster.live()
            member = rng.choice(live)
            url = cluster.url(member)
            try:
                rpc(client, url, "/v3/lease/grant", {"ID": lease, "TTL": LEASE_TTL})
            except RpcError:
                continue
            keeper = Keeper(cluster, lease)
            started = time.monotonic()
            try:
                got = rpc(client, url, "/v3/lock/lock", {"name": b64(NAME), "lease": lease}, LOCK_BOUND_S)
                kv = rpc(client, url, "/v3/kv/range", {"key": got["key"]})["kvs"][0]
            except (RpcError, KeyError, IndexError) as exc:
                keeper.stop.set()
                if member in cluster.live() and time.monotonic() - started >= LOCK_BOUND_S:
                    with lock:
                        starved.append(f"worker {wid} on {member}: {exc}")
                continue
            with lock:
                acquired.append(Acquired(unb64(got["key"]), int(kv["create_revision"]),
                                         int(got["header"]["revision"])))
            if rng.random() < DIE_P:
                keeper.stop.set()  # dies holding the lock: the lease expires and takes the key
                continue
            time.sleep(rng.uniform(0.0, 0.05))  # hold the lock for a moment
            try:
                rpc(client, url, "/v3/lock/unlock", {"key": got["key"]})
            except RpcError:
                pass  # the lease still ends: the keeper stops below
            keeper.stop.set()


def _key_history(cluster: Cluster, prefix: str) -> dict[tuple[str, int], int]:
    """{(key, create revision): delete revision} for every lock key ever written, from watch history."""
    name = cluster.live()[0]
    conn = StreamConn(cluster.url(name), timeout=10.0)
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    conn.send({"create_request": {"key": b64(prefix), "range_end": b64(end), "start_revision": 1}})
    created: dict[str, int] = {}
    out: dict[tuple[str, int], int] = {}
    try:
        # The history is complete once the catch-up stops: nothing writes under the prefix any more.
        while not conn.quiet(1.0):
            msg: dict[str, Any] = conn.read_json()["result"]
            for ev in msg.get("events", []):
                kv = ev["kv"]
                key, rev = unb64(kv["key"]), int(kv["mod_revision"])
                if ev.get("type") == "DELETE":
                    out[(key, created.pop(key))] = rev
                elif key not in created:
                    created[key] = int(kv["create_revision"])
    finally:
        conn.close()
    assert not created, f"lock keys left behind: {created}"
    return out


def test_lock_contention_with_dying_holders_and_a_killed_member(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(3)
    rng = random.Random(15)
    acquired: list[Acquired] = []
    starved: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + RUN_S
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(_worker, cluster, w, deadline, random.Random(rng.random()), acquired, starved,
                               lock) for w in range(WORKERS)]
        time.sleep(KILL_AT_S)  # let contention build before the fault (a schedule, not a synchronisation)
        cluster.kill(cluster.leader())
        for f in futures:
            f.result()
    assert not starved, starved
    assert len(acquired) >= 20, f"too little progress: {len(acquired)} acquisitions"
    # Every key expires with its lease: wait until none is left, then read the whole history.
    wait_for("every lock key gone", lambda: not _keys(cluster) or None, 3 * LEASE_TTL + 10)
    deleted = _key_history(cluster, NAME + "/")
    holders = sorted(acquired, key=lambda a: a.create_rev)
    for a in holders:
        assert (a.key, a.create_rev) in deleted, f"holder {a} has no deletion in the history"
    for prev, nxt in zip(holders, holders[1:], strict=False):
        released = deleted[(prev.key, prev.create_rev)]
        assert released <= nxt.acquired_rev, (
            f"overlap: {prev} held until revision {released}, but {nxt} acquired at {nxt.acquired_rev}")


def _keys(cluster: Cluster) -> list[str]:
    url = cluster.url(cluster.live()[0])
    body = {"key": b64(NAME + "/"), "range_end": b64(NAME + "0")}
    resp = httpx.post(f"{url}/v3/kv/range", json=body, timeout=5.0)
    return [kv["key"] for kv in resp.json().get("kvs", [])]


def test_every_observer_sees_the_same_leaders_in_order(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(3)
    names = cluster.live()
    observers = [StreamConn(cluster.url(n), "/v3/election/observe", timeout=15.0) for n in names]
    seen: list[list[tuple[str, str]]] = [[] for _ in observers]
    try:
        for conn in observers:
            conn.send({"name": b64("ldr")})
            conn.end_body()
        candidates = 5
        with httpx.Client() as client, ThreadPoolExecutor(candidates) as pool:
            for i in range(candidates):
                rpc(client, cluster.url(names[0]), "/v3/lease/grant", {"ID": 0x500 + i, "TTL": 600})
            wins = [pool.submit(rpc, httpx.Client(), cluster.url(names[i % len(names)]),
                                "/v3/election/campaign",
                                {"name": b64("ldr"), "value": b64(f"v{i}"), "lease": 0x500 + i}, 30.0)
                    for i in range(candidates)]
            for step in range(candidates):
                # Each leader is seen by every observer before it goes: observe reports the leader it
                # finds, so a leader replaced faster than an observer reads could be skipped.
                for j, conn in enumerate(observers):
                    line = conn.read_json()["result"]["kv"]
                    seen[j].append((unb64(line["key"]), unb64(line.get("value", ""))))
                if step == candidates - 1:
                    break
                leader_key = seen[0][-1][0]
                winner = next(f for f in wins if f.done() and f.result()["leader"]["key"] == b64(leader_key))
                if step % 2:
                    rpc(client, cluster.url(names[step % 3]), "/v3/lease/revoke",
                        {"ID": int(winner.result()["leader"]["lease"])})
                else:
                    rpc(client, cluster.url(names[step % 3]), "/v3/election/resign",
                        {"leader": winner.result()["leader"]})
    finally:
        for conn in observers:
            conn.close()
    assert all(s == seen[0] for s in seen), seen
    assert len({key for key, _ in seen[0]}) == candidates  # five distinct leaders, each reported once
