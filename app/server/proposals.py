"""Proposals waiting for their log entries to apply: who gets each result, and until when.

A waiter is a plain callable rather than a future with a timer of its own. The writes a front worker
decodes are answered from a callback (`EtcdServer.propose_then`), and a future, its done-callback
and a timer handle per write cost about 6 % of a put's member CPU (put @64 ~12.3k -> ~12.8k/s
here). Deadlines are checked by a sweep a few times a second instead: a proposal times out between
its timeout and its timeout plus the sweep's period after it was made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

Settle = Callable[[Any], None]  # gets the proposal's result, or the exception its waiter should see
SWEEP_SECONDS = 0.25


class PendingProposals:
    def __init__(self, timeout: float, clock: Callable[[], float]) -> None:
        self._timeout = timeout
        self._clock = clock
        self._waiting: dict[int, tuple[Settle, float]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, request_id: int, settle: Settle) -> None:
        self._waiting[request_id] = (settle, self._clock() + self._timeout)

    def take(self, request_id: int) -> Settle | None:
        """The waiter of `request_id`, no longer pending; None if nobody waits (any more)."""
        entry = self._waiting.pop(request_id, None)
        return entry[0] if entry is not None else None

    def discard(self, request_id: int) -> None:
        self._waiting.pop(request_id, None)

    def take_expired(self) -> list[Settle]:
        now = self._clock()
        expired = [rid for rid, (_, deadline) in self._waiting.items() if deadline <= now]
        return [self._waiting.pop(rid)[0] for rid in expired]

    def take_all(self) -> list[Settle]:
        settles = [settle for settle, _ in self._waiting.values()]
        self._waiting.clear()
        return settles


def settle_future(future: asyncio.Future[Any]) -> Settle:
    """A waiter that hands the result to `future` (unless its awaiter has gone)."""
    def settle(result: Any) -> None:
        if not future.done():
            future.set_result(result)
    return settle


def settle_one(settle: Settle, result: Any, log_failure: Callable[[], None]) -> None:
    """Call a waiter with its result; if it fails, log it and go on (a waiter's bug must not stop the
    apply loop that settles it, nor the other waiters)."""
    try:
        settle(result)
    except Exception:  # noqa: BLE001 - see above
        log_failure()


def settle_all(settles: Iterable[Settle], result: Any, log_failure: Callable[[], None]) -> None:
    """Give every waiter the same result (a timeout, a stop, a dropped batch)."""
    for settle in settles:
        settle_one(settle, result, log_failure)


__all__ = ["PendingProposals", "SWEEP_SECONDS", "Settle", "settle_all", "settle_future", "settle_one"]
