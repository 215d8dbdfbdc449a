"""The pure watch hub: synced fan-out, catch-up from history, victims, compaction, progress."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from etcdpy.storage import txn as txn_eval
from etcdpy.storage.kv_types import DeleteRangeRequest, EventType, PutRequest
from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.watch_hub import CompactedMsg, EventsMsg, ProgressMsg, WatchHub, WatchStream
from etcdpy.storage.write_txn import WriteTxn


class World:
    def __init__(self, path: Path) -> None:
        self.store = MVCCStore(str(path))
        self.hub = WatchHub(self.store)
        self.index = 0

    def put(self, key: bytes, value: bytes = b"v") -> int:
        return self._apply(lambda t: txn_eval.apply_put(t, PutRequest(key, value)))

    def delete(self, key: bytes, end: bytes = b"") -> int:
        return self._apply(lambda t: txn_eval.apply_delete(t, DeleteRangeRequest(key, end)))

    def _apply(self, op) -> int:  # type: ignore[no-untyped-def]
        self.index += 1
        t = WriteTxn(self.store, self.index)
        op(t)
        events = t.end()
        if events:
            self.hub.notify(events, self.store.current_revision)
        return self.store.current_revision

    def compact(self, rev: int) -> None:
        self.index += 1
        self.store.schedule_compaction(rev, self.index)
        while not self.store.compaction_step(10):
            pass

    def catch_up(self) -> None:
        for _ in range(10_000):
            if not self.hub.catch_up_step(max_revisions=3, max_records=4):
                return
        raise AssertionError("catch-up does not finish")


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    w = World(tmp_path / "db")
    yield w
    w.store.close()


def revisions(stream: WatchStream) -> list[tuple[int, int, bytes, EventType]]:
    """(watch id, mod revision, key, type) of every queued event, in order."""
    out = []
    for msg in stream.drain():
        if isinstance(msg, EventsMsg):
            for ev in msg.batch.events:
                out.append((msg.watcher.id, ev.kv.mod_revision, ev.kv.key, ev.type))
    return out


def test_synced_single_key_and_range(world: World) -> None:
    s = world.hub.open_stream()
    world.hub.watch(s, 0, b"a", b"", 0)
    world.hub.watch(s, 1, b"a", b"c", 0)
    r1 = world.put(b"a")
    r2 = world.put(b"b")
    world.put(b"c")
    r4 = world.delete(b"a")
    assert revisions(s) == [(0, r1, b"a", EventType.PUT), (1, r1, b"a", EventType.PUT),
                            (1, r2, b"b", EventType.PUT), (0, r4, b"a", EventType.DELETE),
                            (1, r4, b"a", EventType.DELETE)]


def test_events_of_one_revision_share_one_message(world: World) -> None:
    s = world.hub.open_stream()
    world.hub.watch(s, 0, b"k", b"\x00", 0)
    world.put(b"k1")
    world.put(b"k2")
    rev = world.delete(b"k", b"l")
    msgs = [m for m in s.drain() if isinstance(m, EventsMsg)]
    assert len(msgs) == 3
    assert [e.kv.key for e in msgs[-1].batch.events] == [b"k1", b"k2"]
    assert msgs[-1].revision == rev


def test_filters_and_prev_kv(world: World) -> None:
    s = world.hub.open_stream()
    world.hub.watch(s, 0, b"a", b"", 0, no_put=True)
    world.hub.watch(s, 1, b"a", b"", 0, no_delete=True, prev_kv=True)
    world.put(b"a", b"1")
    world.put(b"a", b"2")
    world.delete(b"a")
    msgs = [m for m in s.drain() if isinstance(m, EventsMsg)]
    assert [(m.watcher.id, m.batch.events[0].type) for m in msgs] == [
        (1, EventType.PUT), (1, EventType.PUT), (0, EventType.DELETE)]
    assert msgs[1].batch.events[0].prev_kv is not None and msgs[1].batch.events[0].prev_kv.value == b"1"


def test_catch_up_from_history_in_bounded_batches(world: World) -> None:
    revs = [world.put(b"k%d" % (i % 3), b"%d" % i) for i in range(20)]
    world.delete(b"k1")
    s = world.hub.open_stream()
    w = world.hub.watch(s, 0, b"k", b"l", revs[5], prev_kv=True)
    assert w in world.hub.unsynced
    world.catch_up()
    got = revisions(s)
    assert [r for _, r, _, _ in got] == list(range(revs[5], world.store.current_revision + 1))
    assert got[-1][3] == EventType.DELETE
    assert w not in world.hub.unsynced
    # now synced: live events follow without a gap
    r = world.put(b"k9")
    assert revisions(s) == [(0, r, b"k9", EventType.PUT)]


def test_catch_up_prev_kv_reads_the_previous_revision(world: World) -> None:
    world.put(b"a", b"old")
    r = world.put(b"a", b"new")
    s = world.hub.open_stream()
    world.hub.watch(s, 0, b"a", b"", r, prev_kv=True)
    world.catch_up()
    (msg,) = s.drain()
    assert msg.batch.events[0].prev_kv.value == b"old"


def test_compacted_start_revision(world: World) -> None:
    for i in range(5):
        world.put(b"a", b"%d" % i)
    world.compact(4)
    s = world.hub.open_stream()
    world.hub.watch(s, 7, b"a", b"", 2)
    world.hub.watch(s, 8, b"a", b"", 4)  # exactly at the compaction point is still served
    world.catch_up()
    msgs = s.drain()
    compacted = [m for m in msgs if isinstance(m, CompactedMsg)]
    assert [(m.watcher.id, m.compact_revision) for m in compacted] == [(7, 4)]
    assert [e.kv.mod_revision for m in msgs if isinstance(m, EventsMsg) for e in m.batch.events] == [4, 5, 6]
    assert 7 in s.watchers  # the id stays taken, as in etcd


def test_full_stream_makes_victims_that_catch_up_without_loss(world: World) -> None:
    slow = world.hub.open_stream(capacity=2)
    fast = world.hub.open_stream(capacity=1000)
    world.hub.watch(slow, 0, b"a", b"", 0)
    world.hub.watch(fast, 0, b"a", b"", 0)
    revs = [world.put(b"a", b"%d" % i) for i in range(10)]
    assert world.hub.victims and world.hub.victims_total == 1
    assert [r for _, r, _, _ in revisions(fast)] == revs  # the fast one is not held back
    got: list[int] = []
    for _ in range(100):
        got += [r for _, r, _, _ in revisions(slow)]
        world.hub.catch_up_step()
        if not world.hub.unsynced:
            break
    got += [r for _, r, _, _ in revisions(slow)]
    assert got == revs
    r = world.put(b"a")
    assert [x[1] for x in revisions(slow)] == [r]


def test_future_start_revision_waits(world: World) -> None:
    s = world.hub.open_stream()
    world.hub.watch(s, 0, b"a", b"", world.store.current_revision + 3)
    world.put(b"a")
    world.put(b"a")
    r = world.put(b"a")
    assert [x[1] for x in revisions(s)] == [r]


def test_progress_only_when_synced_and_idle(world: World) -> None:
    world.put(b"a")
    s = world.hub.open_stream()
    synced = world.hub.watch(s, 0, b"a", b"", 0, progress_notify=True)
    lagging = world.hub.watch(s, 1, b"a", b"", 1, progress_notify=True)
    world.hub.progress_tick()
    msgs = s.drain()
    assert [(type(m), m.watcher) for m in msgs] == [(ProgressMsg, synced)]
    assert lagging in world.hub.unsynced
    world.put(b"a")
    s.drain()
    world.hub.progress_tick()  # events since the last tick: no progress for it
    assert [m for m in s.drain() if isinstance(m, ProgressMsg)] == []
    world.hub.progress_tick()
    assert [type(m) for m in s.drain()] == [ProgressMsg]


def test_cancel_and_close(world: World) -> None:
    s = world.hub.open_stream()
    w = world.hub.watch(s, 0, b"a", b"", 0)
    world.hub.watch(s, 1, b"b", b"z", 0)
    assert world.hub.cancel(w) and not world.hub.cancel(w)
    world.hub.close_stream(s)
    world.put(b"a")
    world.put(b"c")
    assert s.drain() == [] and world.hub.watcher_count == 0 and not world.hub.by_key


def test_single_key_fanout_does_not_scan_other_watchers(world: World) -> None:
    s = world.hub.open_stream(capacity=100_000)
    for i in range(5000):
        world.hub.watch(s, i, b"key%d" % i, b"", 0)
    assert not world.hub.ranges and len(world.hub.by_key) == 5000
    r = world.put(b"key42")
    assert revisions(s) == [(42, r, b"key42", EventType.PUT)]


def test_random_interleaving_every_watcher_sees_every_revision_once(world: World) -> None:
    rng = random.Random(7)
    keys = [b"k%d" % i for i in range(6)]
    streams = [world.hub.open_stream(capacity=rng.choice([1, 3, 50])) for _ in range(4)]
    seen: dict[tuple[int, int], list[int]] = {}
    starts: dict[tuple[int, int], int] = {}
    history: list[tuple[int, bytes]] = []
    wid = 0
    for _step in range(400):
        roll = rng.random()
        if roll < 0.55:
            k = rng.choice(keys)
            history.append((world.put(k), k))
        elif roll < 0.65:
            k = rng.choice(keys)
            if world.store.get(k) is not None:
                history.append((world.delete(k), k))
        elif roll < 0.72 and wid < 30:
            si = rng.randrange(len(streams))
            start = rng.randint(1, world.store.current_revision + 2)
            world.hub.watch(streams[si], wid, b"k", b"l", start)
            starts[(si, wid)] = start
            seen[(si, wid)] = []
            wid += 1
        elif roll < 0.9:
            world.hub.catch_up_step(max_revisions=rng.randint(1, 5), max_records=rng.randint(1, 6))
        else:
            si = rng.randrange(len(streams))
            for msg in streams[si].drain():
                assert isinstance(msg, EventsMsg)
                seen[(si, msg.watcher.id)] += [e.kv.mod_revision for e in msg.batch.events]
    for _ in range(1000):
        for si, s in enumerate(streams):
            for msg in s.drain():
                seen[(si, msg.watcher.id)] += [e.kv.mod_revision for e in msg.batch.events]
        if not world.hub.catch_up_step() and all(not s.queue for s in streams) and not world.hub.unsynced:
            break
    assert seen
    for key, revs in seen.items():
        assert revs == [r for r, _ in history if r >= starts[key]], key
