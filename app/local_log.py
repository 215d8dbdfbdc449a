"""Orders and persists proposals for a one-member cluster, with group commit.

This is the seat Raft takes in a replicated cluster: the server hands it encoded commands, and it hands
back committed entries, in order, once they are durable. Proposals that arrive while a sync is running
wait and go together into the next append and the next single `fdatasync`, which runs in a worker thread
so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from storage.wal import WAL, WalEntry, WalHardState

log = logging.getLogger("etcdpy.log")

# A one-member log never changes leader; term 1 is the term it was elected in.
TERM = 1
ENTRY_NORMAL = 0


class LocalLog:
    def __init__(self, wal: WAL, on_commit: Callable[[list[WalEntry]], None]) -> None:
        self.wal = wal
        self.on_commit = on_commit
        self.next_index = wal.last_index + 1
        self.committed_index = wal.last_index
        self._pending: list[bytes] = []
        self._flusher: asyncio.Task[None] | None = None

    def propose(self, data: bytes) -> None:
        self._pending.append(data)
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                first = self.next_index
                entries = [WalEntry(first + i, TERM, ENTRY_NORMAL, data) for i, data in enumerate(batch)]
                self.next_index += len(entries)
                self.wal.append(entries, WalHardState(TERM, 1, entries[-1].index))
                await asyncio.to_thread(self.wal.sync)
                self.committed_index = entries[-1].index
                self.on_commit(entries)
        except OSError:
            # etcd treats a WAL that cannot be written or synced as fatal: nothing after it could be
            # acknowledged safely.
            log.critical("WAL write failed; stopping", exc_info=True)
            os._exit(1)
        finally:
            self._flusher = None
