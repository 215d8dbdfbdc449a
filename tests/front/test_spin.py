"""The spinner (app/front/spin.py) keeps a loop polling for its window after a kick or until stopped,
one chain however often it is kicked, and never on a single CPU; a worker kicks it only with one
client in flight."""

from __future__ import annotations

import asyncio
import time

import pytest

from etcdpy.app.front import spin
from etcdpy.app.front.worker import Worker


class CountingSpinner(spin.Spinner):
    def __init__(self, window: float) -> None:
        super().__init__(window)
        self.polls = 0

    def _spin(self) -> None:
        self.polls += 1
        super()._spin()


def test_a_kick_keeps_the_loop_polling_for_its_window_then_stops() -> None:
    async def main() -> None:
        spinner = CountingSpinner(0.02)
        start = time.perf_counter()
        spinner.kick()
        assert spinner.spinning
        while spinner.spinning:
            await asyncio.sleep(0)
        took = time.perf_counter() - start
        assert took >= 0.02
        # It polled on every iteration of the loop meanwhile, not once at the end.
        assert spinner.polls > 20
        polls = spinner.polls
        await asyncio.sleep(0.01)
        assert spinner.polls == polls  # stopped: the loop may sleep again

    asyncio.run(main())


def test_kicks_while_spinning_extend_one_chain() -> None:
    async def main() -> None:
        spinner = CountingSpinner(10.0)
        spinner.kick()
        spinner.kick()
        spinner.kick()
        before = spinner.polls
        for _ in range(5):
            await asyncio.sleep(0)
        assert spinner.polls - before == 5  # one poll per loop iteration: one chain
        spinner._until = 1.0  # end it (the deadline passed)
        await asyncio.sleep(0)

    asyncio.run(main())


def test_stop_ends_the_spin_and_a_kick_starts_one_chain_again() -> None:
    async def main() -> None:
        spinner = CountingSpinner(10.0)
        spinner.kick()
        await asyncio.sleep(0)
        spinner.stop()
        spinner.stop()
        await asyncio.sleep(0)
        assert not spinner.spinning
        polls = spinner.polls
        await asyncio.sleep(0)
        assert spinner.polls == polls
        spinner.stop()  # not spinning: nothing to stop
        assert not spinner.spinning
        spinner.kick()
        before = spinner.polls
        for _ in range(3):
            await asyncio.sleep(0)
        assert spinner.polls - before == 3
        spinner.stop()
        await asyncio.sleep(0)

    asyncio.run(main())


def test_off_on_a_single_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spin.os, "sched_getaffinity", lambda pid: {0})

    async def main() -> None:
        spinner = spin.Spinner(10.0)
        spinner.kick()
        assert not spinner.spinning

    asyncio.run(main())


def test_a_worker_spins_only_with_one_client_in_flight() -> None:
    async def main() -> None:
        worker = Worker(frozenset(), "unused", {})
        worker.spinner.window = 10.0  # whatever this machine's CPUs
        worker.pending = {1: object(), 2: object()}  # type: ignore[dict-item]
        worker.wrote()
        assert not worker.spinner.spinning
        del worker.pending[2]
        worker.wrote()
        assert worker.spinner.spinning
        worker.spinner._until = 1.0  # end it
        await asyncio.sleep(0)
        assert not worker.spinner.spinning

    asyncio.run(main())
