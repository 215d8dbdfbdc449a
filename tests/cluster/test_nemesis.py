"""A randomized nemesis: concurrent clients on a few keys while members are killed, paused and cut off.

Clients put unique values, read, delete, compare-and-set (a txn comparing the value, with a read in its
failure branch) and write two keys in one txn, on three keys, each operation to a random member, with
short deadlines. Every invocation
and completion is recorded (ok, certainly failed, or unknown: timeouts, lost connections) and the history
is checked per key for linearizability (tests/cluster/linearizability.py). Meanwhile a seeded nemesis
applies a fault (now and then with a second one on another member's process, which may cost the
quorum), holds it, and repairs it: SIGKILL and restart, SIGSTOP and SIGCONT (of the leader or any
member), partitions (isolating the leader or a random member, with resets or a blackhole; a one-way cut;
a "bridge" where two members cannot see each other but the others see both), slow links and lossy
links. Once per run, while a fault is held, a member is replaced: a new one is added as a learner,
catches up (by snapshot: a small --snapshot-count compacts the log), is promoted, and an old one is
removed. At the end every fault is repaired, the cluster must elect a leader and converge, and a final
linearizable read of every key on every member joins the history.

A delete is a write of "absent" in the per-key register model; a two-key txn is a write on each key,
and its atomicity is checked on the event history: both writes at the txn's revision (or, for an
unknown outcome, both at one revision or neither).

Meanwhile one watcher per member watches the keys' prefix from revision 1 and, whenever its stream
breaks (its member killed, a timeout), resumes from the revision after the last event it got. Each
watcher's events must be exactly the prefix of the cluster's event history (read at the end by a fresh
watch) up to its last event: no gap, no repeat, no reordering, no event that differs.

``NEMESIS_SECONDS`` (default 30) sets how long faults go on, ``NEMESIS_MEMBERS`` the cluster size (3 or
5, default 5), ``NEMESIS_SNAPSHOT_COUNT`` the log compaction interval (default 200) and
``NEMESIS_CATCHUP_ENTRIES`` the entries it keeps (default 50: lagging members catch up by snapshot), and
``NEMESIS_REPLACE=0`` turns the member replacement off; ``NEMESIS_SEED`` repeats a schedule (client timing
still varies). The seed, the fault
log and the checker's report are printed on failure.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx
import pytest

from tests.cluster.conftest import ClusterFactory
from tests.cluster.harness import Cluster, Failed, RpcError, b64, cas, get, put, rpc, unb64, wait_for
from tests.cluster.linearizability import History, check
from tests.cluster.netproxy import Mode
from tests.stream_client import StreamClosed, StreamConn

KEYS = ["nem/a", "nem/b", "nem/c"]
CLIENTS = 5
OP_TIMEOUT = 1.5


TxnRecord = tuple[str, str, str, str, int | None]  # (key a, value a, key b, value b, revision or None)


def _member_urls(cluster: Cluster) -> list[str]:
    """The current members' URLs (the nemesis adds and removes members while clients run)."""
    while True:
        try:
            return [m.url for m in list(cluster.members.values())]
        except RuntimeError:  # the dict changed size during the copy
            continue


def _two_key_txn(http: httpx.Client, url: str, history: History, client: int, keys: tuple[str, str],
                 values: tuple[str, str], txns: list[TxnRecord]) -> None:
    ops = [history.invoke(client, k, "put", v) for k, v in zip(keys, values, strict=True)]
    body = {"success": [{"request_put": {"key": b64(k), "value": b64(v)}}
                        for k, v in zip(keys, values, strict=True)]}
    try:
        data = rpc(http, url, "/v3/kv/txn", body, timeout=OP_TIMEOUT)
    except Failed:
        for op in ops:
            history.fail(op)
        raise
    except RpcError:
        for op in ops:
            history.unknown(op)
        txns.append((keys[0], values[0], keys[1], values[1], None))
        return
    for op in ops:
        history.ok(op)
    txns.append((keys[0], values[0], keys[1], values[1], int(data["header"]["revision"])))


def _client(cluster: Cluster, history: History, client: int, seed: int, stop: threading.Event,
            txns: list[TxnRecord]) -> None:
    rng = random.Random(f"{seed}/client/{client}")
    last_seen: dict[str, str | None] = {}
    seq = 0
    with httpx.Client() as http:
        while not stop.is_set():
            key, url = rng.choice(KEYS), rng.choice(_member_urls(cluster))
            roll = rng.random()
            seq += 1
            new = f"c{client}-{seq}"
            expected = last_seen.get(key)
            if roll >= 0.88:
                a, b = rng.sample(KEYS, 2)
                try:
                    _two_key_txn(http, url, history, client, (a, b), (new + "a", new + "b"), txns)
                    last_seen[a], last_seen[b] = new + "a", new + "b"
                except Failed:
                    stop.wait(0.05)
                continue
            try:
                if roll < 0.07:
                    op = history.invoke(client, key, "put", None)  # a delete writes "absent"
                    rpc(http, url, "/v3/kv/deleterange", {"key": b64(key)}, timeout=OP_TIMEOUT)
                    history.ok(op)
                    last_seen[key] = None
                elif roll < 0.4:
                    op = history.invoke(client, key, "get")
                    value = get(http, url, key, timeout=OP_TIMEOUT)
                    history.ok(op, value)
                    last_seen[key] = value
                elif roll < 0.68 or expected is None:
                    op = history.invoke(client, key, "put", new)
                    put(http, url, key, new, timeout=OP_TIMEOUT)
                    history.ok(op)
                    last_seen[key] = new
                else:
                    op = history.invoke(client, key, "cas", (expected, new))
                    succeeded, seen = cas(http, url, key, expected, new, timeout=OP_TIMEOUT)
                    history.ok(op, (succeeded, seen))
                    last_seen[key] = new if succeeded else seen
            except Failed:
                history.fail(op)
                stop.wait(0.05)  # the member is down or has no leader: do not spin
            except RpcError:
                history.unknown(op)


Event = tuple[int, str, str, str]  # (mod revision, type, key, value)


def _watch(url: str, start: int, on_event: Callable[[Event], None], stop: threading.Event,
           idle_timeout: float) -> None:
    """One watch stream on the keys' prefix from ``start``, until it breaks, ``stop`` is set, or it is
    idle for ``idle_timeout`` seconds (it then resumes on a fresh connection)."""
    conn = StreamConn(url, "/v3/watch", timeout=idle_timeout)
    try:
        conn.send({"create_request": {"key": b64("nem/"), "range_end": b64("nem0"),
                                      "start_revision": str(start)}})
        while not stop.is_set():
            result = conn.read_json(timeout=idle_timeout)["result"]
            assert not result.get("canceled"), f"watch canceled: {result}"
            for ev in result.get("events", []):
                kv = ev["kv"]
                on_event((int(kv["mod_revision"]), ev.get("type", "PUT"), unb64(kv["key"]),
                          unb64(kv.get("value", ""))))
    finally:
        conn.close()


class Watcher:
    """Watches through one member for the whole run, resuming after the last event it got."""

    def __init__(self, cluster: Cluster, name: str, stop: threading.Event) -> None:
        self.cluster, self.name, self.stop = cluster, name, stop
        self.events: list[Event] = []
        self.reconnects = 0
        self.thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            start = self.events[-1][0] + 1 if self.events else 1
            try:
                _watch(self.cluster.url(self.name), start, self.events.append, self.stop, idle_timeout=3.0)
            except (OSError, TimeoutError, StreamClosed, ValueError, KeyError):
                self.reconnects += 1
                self.stop.wait(0.1)


def reference_events(url: str, last_revision: int) -> list[Event]:
    """Every event on the prefix from revision 1 up to ``last_revision``, by one fresh watch."""
    events: list[Event] = []
    stop = threading.Event()

    def collect(ev: Event) -> None:
        events.append(ev)
        if ev[0] >= last_revision:
            stop.set()

    if last_revision > 0:
        _watch(url, 1, collect, stop, idle_timeout=10.0)
    return events


def check_watch_streams(streams: dict[str, list[Event]], reference: list[Event],
                        removed: Iterable[str] = ()) -> None:
    """Each stream must be a prefix of the reference history: no gap, repeat, reordering or change (a
    removed member's stream may have ended before its first event)."""
    for name, got in streams.items():
        assert got or name in removed, f"watcher on {name} got no event at all"
        assert got == reference[:len(got)], _first_difference(name, got, reference)


def check_txn_atomicity(txns: list[TxnRecord], reference: list[Event]) -> None:
    """A two-key txn's writes are at one revision: its own if acknowledged; for an unknown outcome, both
    at one revision or neither."""
    at = {(key, value): rev for rev, kind, key, value in reference if kind == "PUT"}
    for a, va, b, vb, rev in txns:
        ra, rb = at.get((a, va)), at.get((b, vb))
        if rev is not None:
            assert ra == rb == rev, f"txn putting {a}={va}, {b}={vb} acknowledged at {rev}: at {ra}, {rb}"
        else:
            assert ra == rb, f"txn putting {a}={va}, {b}={vb} (outcome unknown) half applied: {ra}, {rb}"


def _first_difference(name: str, got: list[Event], reference: list[Event]) -> str:
    for i, (a, b) in enumerate(zip(got, reference, strict=False)):
        if a != b:
            return (f"watcher on {name}: event #{i} is {a}, the history has {b} "
                    f"(before: {got[max(0, i - 3):i]}; a gap, repeat or reordering)")
    return f"watcher on {name} got {len(got)} events, more than the {len(reference)} in the history"


class Nemesis:
    def __init__(self, cluster: Cluster, seed: int, replace: bool) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.log: list[str] = []
        self.started = time.monotonic()
        self.replace_pending = replace
        self.learner: str | None = None  # added by a replacement that stopped before promoting it
        self.removed: list[str] = []
        self.next_member = len(cluster.members) + 1

    def note(self, text: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:7.2f}s {text}")

    def _leader_or_any(self) -> str:
        view = self.cluster.leader_view()
        leaders = [n for n in view.values() if n is not None and n in self.cluster.live()]
        return leaders[0] if leaders else self.rng.choice(list(self.cluster.members))

    KINDS = ["kill", "kill-leader", "pause", "pause-leader", "isolate", "isolate-leader", "one-way", "bridge",
             "slow", "lossy"]

    def one_round(self, hold: float) -> None:
        """Apply a fault (sometimes a second one, on a process: quorum may be lost), hold them for ``hold``
        seconds (a timed wait: the faults' duration), then repair them."""
        kind = self.rng.choice(self.KINDS)
        names = list(self.cluster.members)
        target = self._leader_or_any() if kind.endswith("leader") else self.rng.choice(names)
        faults = [(kind, self._start(kind, target))]
        if self.rng.random() < 0.25:
            others = [n for n in self.cluster.members if n != target]
            second = self.rng.choice(["kill", "pause"])
            faults.append((second, self._start(second, self.rng.choice(others))))
        if self.replace_pending and self.rng.random() < 0.3 and len(faults) == 1:
            self.replace_member(avoid=target)
        else:
            time.sleep(hold)
        for kind, repair in reversed(faults):
            repair()
            self.note(f"repaired {kind}")

    def _start(self, kind: str, target: str) -> Callable[[], None]:
        """Apply one fault; returns how to repair it."""
        c = self.cluster
        names = list(c.members)
        repair: Callable[[], None] = c.heal
        if kind.startswith("kill"):
            self.note(f"kill -9 {target}")
            c.kill(target)

            def repair() -> None:
                c.start_member(target, wait="serving")
        elif kind.startswith("pause"):
            self.note(f"SIGSTOP {target}")
            c.pause(target)

            def repair() -> None:
                c.resume(target)
        elif kind.startswith("isolate"):
            mode: Mode = self.rng.choice(["drop", "blackhole"])
            self.note(f"isolate {target} ({mode})")
            c.isolate(target, mode=mode)
        elif kind == "one-way":
            others = [n for n in names if n != target]
            self.note(f"cut {target} -> {others} (one way)")
            c.net.set_links([(target, o) for o in others], mode="drop")
        elif kind == "bridge":
            a, b = self.rng.sample(names, 2)
            self.note(f"cut {a} <-> {b} (the others still see both)")
            c.net.set_links([(a, b), (b, a)], mode=self.rng.choice(["drop", "blackhole"]))
        elif kind == "slow":
            delay = self.rng.uniform(0.02, 0.25)
            self.note(f"delay every link by {delay * 1000:.0f} ms")
            c.net.set_links([(a, b) for a in names for b in names if a != b], delay=delay)
        else:
            loss = self.rng.uniform(0.05, 0.3)
            self.note(f"break {loss:.0%} of peer chunks")
            c.net.set_links([(a, b) for a in names for b in names if a != b], loss=loss)
        return repair

    def replace_member(self, avoid: str) -> None:
        """Add a learner (it catches up by snapshot), promote it, remove an old member; under the fault
        being held. A step refused because of the fault is retried in a later round."""
        c = self.cluster
        name = f"n{self.next_member}"
        via = self._leader_or_any()
        try:
            self.note(f"member add {name} (learner) via {via}")
            c.add_member(name, via=via, learner=True)
        except RpcError as exc:
            self.note(f"member add refused: {exc.message}")
            c.forget(name)
            return
        self.next_member += 1
        self.replace_pending = False
        self.learner = name
        self.finish_replacement(avoid)

    def finish_replacement(self, avoid: str) -> None:
        """Promote the learner a replacement added, then remove an old member. Under a fault this may
        stop half way (the learner stays one); it is finished once the cluster is repaired, so that the
        final linearizable reads, which a learner refuses as etcd's do, find only voting members."""
        c, name = self.cluster, self.learner
        assert name is not None
        try:
            c.promote_when_in_sync(c.members[name].id, timeout=30)
            self.learner = None
            self.note(f"promoted {name}")
            victims = [n for n in c.members if n not in (name, avoid, self._leader_or_any())]
            victim = self.rng.choice(victims)
            c.member_call(self._leader_or_any(), "remove", {"ID": str(c.members[victim].id)})
        except (RpcError, TimeoutError, AssertionError) as exc:
            self.note(f"replacement stopped half way: {exc}")
            return
        self.note(f"member remove {victim}")
        c.forget(victim)
        self.removed.append(victim)

    def repair_all(self) -> None:
        c = self.cluster
        c.heal()
        for name, m in c.members.items():
            if m.paused:
                c.resume(name)
            if not m.running:
                c.start_member(name, wait="serving")
        self.note("everything repaired")


def test_nemesis(cluster_factory: ClusterFactory, tmp_path: Path) -> None:
    seed = int(os.environ.get("NEMESIS_SEED", random.randrange(2**32)))
    seconds = float(os.environ.get("NEMESIS_SECONDS", "30"))
    members = int(os.environ.get("NEMESIS_MEMBERS", "5"))
    snapshot_count = int(os.environ.get("NEMESIS_SNAPSHOT_COUNT", "200"))
    catch_up = os.environ.get("NEMESIS_CATCHUP_ENTRIES", "50")
    cluster = cluster_factory(members, seed=seed, snapshot_count=snapshot_count,
                              extra=["--experimental-snapshot-catchup-entries", catch_up])
    history = History()
    txns: list[TxnRecord] = []
    stop = threading.Event()
    clients = [threading.Thread(target=_client, args=(cluster, history, i, seed, stop, txns), daemon=True)
               for i in range(CLIENTS)]
    nemesis = Nemesis(cluster, seed, replace=os.environ.get("NEMESIS_REPLACE", "1") != "0")
    watch_stop = threading.Event()
    watchers = [Watcher(cluster, name, watch_stop) for name in cluster.members]
    context = ""
    try:
        for w in watchers:
            w.thread.start()
        for t in clients:
            t.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            nemesis.one_round(hold=nemesis.rng.uniform(0.5, 3.0))
            time.sleep(nemesis.rng.uniform(0.3, 1.5))  # quiet time between faults
        nemesis.repair_all()
        cluster.wait_leader(timeout=30)
        nemesis.note("leader elected after repair")
        settled = history.counts["put ok"] + history.counts["get ok"] + history.counts["cas ok"]
        if nemesis.replace_pending:
            nemesis.replace_member(avoid="")  # no fault came with a chance for it: replace now
        elif nemesis.learner is not None:
            nemesis.finish_replacement(avoid="")  # it stopped half way under a fault: finish it now
        nemesis.repair_all()
        # The clients go on for a while against the repaired cluster: it must serve them.
        deadline = time.monotonic() + 20
        while (history.counts["put ok"] + history.counts["get ok"] + history.counts["cas ok"] < settled + 20
               and time.monotonic() < deadline):
            time.sleep(0.1)
        stop.set()
        for t in clients:
            t.join(timeout=30)
        cluster.wait_converged(prefix="nem/", timeout=30)
        # The watchers catch up with the last write, then their streams are compared with the history.
        # The last write is the store's revision (clients write only this prefix), not the newest
        # surviving key's: when the last writes were deletes, that key is older than they are.
        with httpx.Client() as http:
            header = rpc(http, cluster.url(cluster.leader()), "/v3/kv/range", {"key": b64("nem/")},
                         timeout=5.0)["header"]
        last_revision = int(header["revision"]) if int(header["revision"]) > 1 else 0  # 1: nothing written
        for w in watchers:
            if w.name in nemesis.removed:
                continue

            def caught_up(w: Watcher = w) -> bool:
                return bool(w.events) and w.events[-1][0] >= last_revision

            wait_for(f"the watcher on {w.name} to reach revision {last_revision}", caught_up, timeout=20)
        watch_stop.set()
        reference = reference_events(cluster.url(cluster.leader()), last_revision)
        assert reference and reference[-1][0] == last_revision
        check_watch_streams({w.name: list(w.events) for w in watchers}, reference, nemesis.removed)
        check_txn_atomicity(list(txns), reference)
        # Final reads: every key on every member, linearizable, in the history as one more client.
        with httpx.Client() as http:
            for name in cluster.members:
                for key in KEYS:
                    op = history.invoke(99, key, "get")
                    history.ok(op, get(http, cluster.url(name), key, timeout=5.0))
        ops = history.finish()
        context = (f"seed {seed} (NEMESIS_SEED={seed} to repeat), {len(txns)} two-key txns\nfaults:\n  "
                   + "\n  ".join(nemesis.log)
                   + f"\noperations: {dict(history.counts)}\nwatch events: {len(reference)}, reconnects "
                   + str({w.name: w.reconnects for w in watchers}))
        (tmp_path / "history.jsonl").write_text("\n".join(
            json.dumps([o.id, o.client, o.key, o.kind, o.arg, o.call, None if o.unknown else o.ret, o.out])
            for o in ops))
        completed = history.counts["put ok"] + history.counts["get ok"] + history.counts["cas ok"]
        assert completed >= 100, f"too few operations completed to mean anything\n{context}"
        started = time.monotonic()
        result = check(ops, budget_s=120)
        print(f"{context}\nchecked in {time.monotonic() - started:.1f} s\n{result.report()}")
        assert result.ok is True, f"history is not linearizable\n{context}\n{result.report()}"
    except BaseException:
        if not context:
            print(f"seed {seed}\nfaults:\n  " + "\n  ".join(nemesis.log)
                  + f"\noperations: {dict(history.counts)}")
        raise
    finally:
        stop.set()
        watch_stop.set()
        for t in clients:
            t.join(timeout=30)
        for w in watchers:
            w.thread.join(timeout=10)


def test_watch_stream_check() -> None:
    history: list[Event] = [(r, "PUT", "nem/a", f"v{r}") for r in range(2, 8)]
    check_watch_streams({"ok": history[:4], "all": history}, history)
    bad = {
        "gap": history[:2] + history[3:],
        "repeat": history[:3] + history[2:],
        "reordered": [history[1], history[0]],
        "changed": history[:2] + [(4, "PUT", "nem/a", "other")],
        "longer": history + [(9, "PUT", "nem/a", "v9")],
        "empty": [],
    }
    for name, stream in bad.items():
        with pytest.raises(AssertionError):
            check_watch_streams({name: stream}, history)
