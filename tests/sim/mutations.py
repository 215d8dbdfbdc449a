"""Deliberate bugs above Raft, each of which the whole-server simulation must catch.

Each mutation is a context manager that patches the real code for the duration of a run:

- `ack_before_apply`: the store reports a write batch applied (revision, applied index) and the request
  is answered, while the batch itself reaches the database only later;
- `watch_skips_revision`: the watch hub drops the events of every fifth revision for synced watchers;
- `lessor_expires_early`: the lessor finds leases expired 2 s before their time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from etcdpy.storage.lessor import Lessor
from etcdpy.storage.mvcc import MVCCStore
from etcdpy.storage.watch_hub import WatchHub

EARLY_S = 2.0


@contextlib.contextmanager
def _patched(owner: Any, name: str, make: Callable[[Any], Any]) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, make(original))
    try:
        yield
    finally:
        setattr(owner, name, original)


def ack_before_apply() -> contextlib.AbstractContextManager[None]:
    def make(original: Any) -> Any:
        def commit_batch(self: MVCCStore, batch: Any, index: int, revision: int) -> None:
            db = self.db

            def write() -> None:
                with contextlib.suppress(Exception):  # the member may have crashed meanwhile
                    db.write(batch)
            asyncio.get_running_loop().call_later(0.05, write)
            self.applied_index = index
            self.current_revision = revision
        return commit_batch
    return _patched(MVCCStore, "commit_batch", make)


def watch_skips_revision() -> contextlib.AbstractContextManager[None]:
    def make(original: Any) -> Any:
        def notify(self: WatchHub, events: list[Any], revision: int) -> None:
            if revision % 5 == 0:
                return
            original(self, events, revision)
        return notify
    return _patched(WatchHub, "notify", make)


def lessor_expires_early() -> contextlib.AbstractContextManager[None]:
    def make(original: Any) -> Any:
        def expired(self: Lessor, now: float, limit: int = 1000) -> list[int]:
            return list(original(self, now + EARLY_S, limit))
        return expired
    return _patched(Lessor, "expired", make)


MUTATIONS: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "ack_before_apply": ack_before_apply,
    "watch_skips_revision": watch_skips_revision,
    "lessor_expires_early": lessor_expires_early,
}
