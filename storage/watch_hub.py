"""The watch hub: etcd's watchable store, without asyncio (DESIGN §3).

Watchers belong to a `WatchStream` (one etcd watch stream, one WebSocket, one SSE connection). Each
stream has one bounded queue of outgoing messages shared by its watchers, as etcd's watch streams share
one channel. Three groups, as in etcd:

- synced watchers are up to date: `notify(events, revision)` (called by the applier after each apply)
  puts the events of that revision into their stream's queue, one message per watcher per revision;
- unsynced watchers start at an older revision: `catch_up_step()` reads the `kv` family in revision order
  in bounded batches and moves them forward, one message per watcher per batch, until they are synced;
- victims are synced watchers whose stream queue was full when events arrived. The applier never waits:
  the watcher drops back to unsynced at the revision it missed and is caught up from history once its
  stream has room again (etcd keeps the missed batch in memory instead; re-reading keeps memory bounded).

A watcher whose next revision falls below the compaction point gets a `CompactedMsg` and is removed.
Nothing here reads a clock or blocks; the app schedules `catch_up_step` and `progress_tick`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from etcdpy.storage.kv_range import GTE_RANGE_END
from etcdpy.storage.kv_types import Event, EventType, KeyValue

if TYPE_CHECKING:
    from etcdpy.storage.mvcc import MVCCStore

SYNCED, UNSYNCED, DONE = 0, 1, 2

DEFAULT_QUEUE_CAPACITY = 1024  # messages per stream before its watchers become victims
MAX_CATCH_UP_REVISIONS = 1000  # etcd's watchBatchMaxRevs
MAX_CATCH_UP_RECORDS = 10000  # records read from history per catch-up step
MAX_WATCHERS_PER_STEP = 512  # etcd's maxWatchersPerSync


class Watcher:
    __slots__ = ("id", "stream", "key", "end", "next_rev", "no_put", "no_delete", "prev_kv",
                 "progress_notify", "fragment", "state", "victim", "idle", "tag", "seq")

    def __init__(self, wid: int, stream: WatchStream, key: bytes, end: bytes, next_rev: int,
                 no_put: bool, no_delete: bool, prev_kv: bool, progress_notify: bool, fragment: bool) -> None:
        self.id = wid
        self.stream = stream
        self.key = key
        self.end = end  # b"" = just `key`; b"\0" = every key >= `key`
        self.next_rev = next_rev  # the first revision not yet delivered
        self.no_put = no_put
        self.no_delete = no_delete
        self.prev_kv = prev_kv
        self.progress_notify = progress_notify
        self.fragment = fragment
        self.state = SYNCED
        self.victim = False
        self.idle = True  # no events since the last progress tick (etcd's progress map)
        self.tag: Any = None  # free for the API layer
        self.seq = 0  # the hub's creation counter; the hash, so sets of watchers iterate reproducibly

    def __hash__(self) -> int:
        # Not the object's address: fan-out and catch-up order must not depend on where a watcher
        # happened to be allocated (a simulation seed replays exactly).
        return self.seq

    def matches(self, key: bytes) -> bool:
        if not self.end:
            return key == self.key
        return key >= self.key and (self.end == GTE_RANGE_END or key < self.end)

    def wants(self, ev: Event) -> bool:
        if ev.type == EventType.PUT:
            return not self.no_put
        return not self.no_delete


class EventBatch:
    """Events for one message. Shared by every watcher that gets the same events; `cache` lets the
    encoder reuse its output across them."""

    __slots__ = ("events", "cache")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.cache: dict[Any, Any] = {}


class EventsMsg:
    __slots__ = ("watcher", "batch", "revision")

    def __init__(self, watcher: Watcher, batch: EventBatch, revision: int) -> None:
        self.watcher = watcher
        self.batch = batch
        self.revision = revision  # the header revision


class ProgressMsg:
    __slots__ = ("watcher", "revision")

    def __init__(self, watcher: Watcher, revision: int) -> None:
        self.watcher = watcher
        self.revision = revision


class CompactedMsg:
    __slots__ = ("watcher", "compact_revision")

    def __init__(self, watcher: Watcher, compact_revision: int) -> None:
        self.watcher = watcher
        self.compact_revision = compact_revision


class WatchStream:
    """One consumer: its watchers and the queue of messages waiting to be written to it."""

    def __init__(self, hub: WatchHub, capacity: int = DEFAULT_QUEUE_CAPACITY,
                 wakeup: Callable[[], None] | None = None) -> None:
        self.hub = hub
        self.capacity = capacity
        self.queue: deque[Any] = deque()
        self.watchers: dict[int, Watcher] = {}
        self.wakeup = wakeup
        self.next_id = 0
        self.closed = False

    @property
    def has_room(self) -> bool:
        return len(self.queue) < self.capacity

    def push(self, msg: Any) -> None:
        """Queue a message whatever the capacity (control messages: created, canceled, progress)."""
        self.queue.append(msg)
        if self.wakeup is not None:
            self.wakeup()

    def drain(self) -> list[Any]:
        """Everything queued, in order; watchers that were victims may now catch up."""
        out = list(self.queue)
        self.queue.clear()
        if out and self.hub.unsynced and self.hub.on_work is not None:
            self.hub.on_work()
        return out

    def allocate_id(self) -> int:
        while self.next_id in self.watchers:
            self.next_id += 1
        wid = self.next_id
        self.next_id += 1
        return wid


class WatchHub:
    def __init__(self, store: MVCCStore, on_work: Callable[[], None] | None = None) -> None:
        self.store = store
        self.by_key: dict[bytes, set[Watcher]] = {}
        self.ranges: set[Watcher] = set()
        self.unsynced: set[Watcher] = set()
        self.progress_watchers: set[Watcher] = set()
        self._seq = 0
        self.victims_total = 0  # how many times a watcher became a victim (a metric)
        # Called when catch-up work appears (a new unsynced watcher, a victim, a drained stream).
        self.on_work = on_work  # called when catch-up work appears (the app schedules catch_up_step)

    # ------------------------------------------------------------------ registration

    @property
    def current_revision(self) -> int:
        return self.store.current_revision

    def open_stream(self, capacity: int = DEFAULT_QUEUE_CAPACITY,
                    wakeup: Callable[[], None] | None = None) -> WatchStream:
        return WatchStream(self, capacity, wakeup)

    def watch(self, stream: WatchStream, wid: int, key: bytes, end: bytes, start_rev: int,
              no_put: bool = False, no_delete: bool = False, prev_kv: bool = False,
              progress_notify: bool = False, fragment: bool = False) -> Watcher:
        """Register a watcher with id `wid` (the caller checked it is free); start_rev <= 0 = from now."""
        current = self.store.current_revision
        next_rev = current + 1 if start_rev <= 0 else start_rev
        w = Watcher(wid, stream, key, end, next_rev, no_put, no_delete, prev_kv, progress_notify, fragment)
        self._seq += 1
        w.seq = self._seq
        stream.watchers[wid] = w
        if progress_notify:
            self.progress_watchers.add(w)
        if next_rev > current:
            self._add_synced(w)
        else:
            w.state = UNSYNCED
            self.unsynced.add(w)
            if self.on_work is not None:
                self.on_work()
        return w

    def cancel(self, w: Watcher) -> bool:
        """Remove a watcher; False if it was already gone."""
        if w.stream.watchers.get(w.id) is not w:
            return False
        del w.stream.watchers[w.id]
        self._detach(w)
        return True

    def close_stream(self, stream: WatchStream) -> None:
        stream.closed = True
        for w in list(stream.watchers.values()):
            self.cancel(w)
        stream.queue.clear()

    def _detach(self, w: Watcher) -> None:
        if w.state == SYNCED:
            self._remove_synced(w)
        elif w.state == UNSYNCED:
            self.unsynced.discard(w)
        w.state = DONE
        self.progress_watchers.discard(w)

    def _add_synced(self, w: Watcher) -> None:
        w.state = SYNCED
        if w.end:
            self.ranges.add(w)
        else:
            self.by_key.setdefault(w.key, set()).add(w)

    def _remove_synced(self, w: Watcher) -> None:
        if w.end:
            self.ranges.discard(w)
            return
        group = self.by_key.get(w.key)
        if group is not None:
            group.discard(w)
            if not group:
                del self.by_key[w.key]

    def desync_all(self) -> None:
        """Send every synced watcher back to catch up from history: the store was replaced under it
        (a snapshot from the leader), so the revisions it skipped must be replayed from there."""
        for w in [*(w for group in self.by_key.values() for w in group), *self.ranges]:
            w.state = UNSYNCED
            self.unsynced.add(w)
        self.by_key.clear()
        self.ranges.clear()
        if self.on_work is not None:
            self.on_work()

    @property
    def watcher_count(self) -> int:
        return sum(len(g) for g in self.by_key.values()) + len(self.ranges) + len(self.unsynced)

    # ------------------------------------------------------------------ fan-out

    def notify(self, events: list[Event], revision: int) -> None:
        """Deliver the events of one applied revision to synced watchers; never blocks."""
        per: dict[Watcher, list[Event]] = {}
        by_key, ranges = self.by_key, self.ranges
        for ev in events:
            key = ev.kv.key
            group = by_key.get(key)
            if group:
                for w in group:
                    per.setdefault(w, []).append(ev)
            if ranges:
                for w in ranges:
                    if w.matches(key):
                        per.setdefault(w, []).append(ev)
        if not per:
            return
        shared = EventBatch(events)
        whole = len(events)
        for w, evs in per.items():
            if w.next_rev > revision:  # a watcher that starts at a future revision
                continue
            if w.no_put or w.no_delete:
                evs = [ev for ev in evs if w.wants(ev)]
            if not evs:
                w.next_rev = revision + 1
                continue
            stream = w.stream
            if not stream.has_room:
                self._make_victim(w, revision)
                continue
            batch = shared if len(evs) == whole else EventBatch(evs)
            w.next_rev = revision + 1
            w.idle = False
            stream.push(EventsMsg(w, batch, revision))

    def _make_victim(self, w: Watcher, revision: int) -> None:
        self._remove_synced(w)
        w.state = UNSYNCED
        w.victim = True
        w.next_rev = revision
        self.unsynced.add(w)
        self.victims_total += 1
        if self.on_work is not None:
            self.on_work()

    @property
    def victims(self) -> list[Watcher]:
        return [w for w in self.unsynced if w.victim]

    # ------------------------------------------------------------------ catch-up

    def catch_up_step(self, max_revisions: int = MAX_CATCH_UP_REVISIONS,
                      max_records: int = MAX_CATCH_UP_RECORDS,
                      max_watchers: int = MAX_WATCHERS_PER_STEP) -> bool:
        """Move unsynced watchers forward by at most `max_revisions` revisions of history.

        Returns True while there is more that can be done now (unsynced watchers whose streams have
        room); watchers whose streams are full wait until their stream is drained.
        """
        store = self.store
        ready: list[Watcher] = []
        for w in self.unsynced:
            if w.stream.has_room:
                ready.append(w)
                if len(ready) >= max_watchers:
                    break
        if not ready:
            return False
        compact = store.compact_revision
        live: list[Watcher] = []
        for w in ready:
            if w.next_rev < compact:
                self.unsynced.discard(w)
                w.state = DONE
                self.progress_watchers.discard(w)
                # It keeps its id on the stream (etcd: a cancel still answers, the id stays taken).
                w.stream.push(CompactedMsg(w, compact))
            else:
                live.append(w)
        current = store.current_revision
        if live:
            start = min(w.next_rev for w in live)
            records, end_rev = self._read_history(start, current, max_revisions, max_records)
            for w in live:
                evs = self._events_for(w, records, end_rev)
                if evs:
                    w.idle = False
                    w.stream.push(EventsMsg(w, EventBatch(evs), current))
                if end_rev >= current:
                    self.unsynced.discard(w)
                    w.next_rev = max(w.next_rev, current + 1)
                    w.victim = False
                    self._add_synced(w)
                elif w.next_rev <= end_rev:
                    w.next_rev = end_rev + 1  # (a watcher already past this batch stays where it is)
        return any(w.stream.has_room for w in self.unsynced)

    def _read_history(self, start: int, current: int, max_revisions: int,
                      max_records: int) -> tuple[list[tuple[int, KeyValue]], int]:
        """Records from `start` on, cut at a revision boundary; returns them and the last full revision."""
        if start > current:
            return [], current
        limit = max_records
        while True:
            rows = self.store.history(start, limit)
            if len(rows) < limit:
                end_rev = current
                break
            last = rows[-1][0][0]
            if rows[0][0][0] != last:
                end_rev = last - 1  # the last revision may continue past the limit
                break
            limit *= 2  # one revision larger than the batch: read all of it
        records: list[tuple[int, KeyValue]] = []
        distinct = 0
        prev = -1
        for (main, _), kv in rows:
            if main > end_rev:
                break
            if main != prev:
                distinct += 1
                if distinct > max_revisions:
                    end_rev = prev
                    break
                prev = main
            records.append((main, kv))
        return records, end_rev

    def _events_for(self, w: Watcher, records: Iterable[tuple[int, KeyValue]], end_rev: int) -> list[Event]:
        out: list[Event] = []
        next_rev = w.next_rev
        for rev, kv in records:
            if rev < next_rev or rev > end_rev or not w.matches(kv.key):
                continue
            if kv.version == 0:
                if w.no_delete:
                    continue
                ev = Event(EventType.DELETE, kv, self._prev(kv.key, rev) if w.prev_kv else None)
            else:
                if w.no_put:
                    continue
                ev = Event(EventType.PUT, kv, self._prev(kv.key, rev) if w.prev_kv else None)
            out.append(ev)
        return out

    def _prev(self, key: bytes, rev: int) -> KeyValue | None:
        """The key as it was just before `rev` (etcd reads at mod_revision - 1); None if compacted."""
        if rev - 1 < self.store.compact_revision or rev <= 1:
            return None
        return next(self.store.iter_at(key, b"", rev - 1), None)

    # ------------------------------------------------------------------ progress

    def request_progress(self, w: Watcher) -> bool:
        """Send `w` a progress message at the current revision if it is synced (etcd's RequestProgress)."""
        if w.state != SYNCED or not w.stream.has_room:
            return False
        w.stream.push(ProgressMsg(w, self.store.current_revision))
        return True

    def progress_tick(self) -> None:
        """One tick of etcd's progress ticker: notify idle progress_notify watchers, then reset."""
        for w in list(self.progress_watchers):
            if w.idle:
                self.request_progress(w)
            w.idle = True
