"""A background write load that remembers what was acknowledged, for "no acknowledged write lost" checks.

Writer threads put fresh keys (never overwritten) on members chosen at random among those the test says
are writable; each acknowledgement is recorded with the revision it was given and the member that gave
it. `verify()` then checks that every member holds every acknowledged key with exactly that value and
revision: an acknowledged write may not be lost nor applied at another revision anywhere.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.cluster.harness import Cluster, Failed, RpcError, dump, put, wait_for


@dataclass
class Ack:
    value: str
    revision: int
    member: str
    at: float


@dataclass
class Writer:
    cluster: Cluster
    prefix: str
    targets: Callable[[], list[str]]  # members to write to right now
    threads: int = 3
    timeout: float = 2.0
    seed: int = 0
    acked: dict[str, Ack] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> Writer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for t in range(self.threads):
            worker = threading.Thread(target=self._run, args=(t,), name=f"writer-{t}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)
        self._workers.clear()

    def _run(self, t: int) -> None:
        rng = random.Random(f"{self.seed}/{t}")
        seq = 0
        with self.cluster.client() as client:
            while not self._stop.is_set():
                names = self.targets()
                if not names:
                    self._stop.wait(0.02)
                    continue
                name = rng.choice(names)
                seq += 1
                key, value = f"{self.prefix}{t}/{seq:06d}", f"{name}:{seq}:{rng.getrandbits(32):x}"
                try:
                    rev = put(client, self.cluster.url(name), key, value, timeout=self.timeout)
                except Failed as exc:
                    with self._lock:
                        self.failed += 1
                        self.errors[exc.message[:60]] = self.errors.get(exc.message[:60], 0) + 1
                    self._stop.wait(0.02)  # a refused write: the member is down or leaderless
                    continue
                except RpcError as exc:
                    with self._lock:
                        self.unknown.add(key)
                        self.errors[exc.message[:60]] = self.errors.get(exc.message[:60], 0) + 1
                    continue
                with self._lock:
                    self.acked[key] = Ack(value, rev, name, time.monotonic())

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def wait_acks(self, more: int, timeout: float = 20.0) -> None:
        """Until ``more`` further writes have been acknowledged (the cluster makes progress)."""
        target = self.count() + more
        wait_for(f"{more} more acknowledged writes (errors so far: {self.errors})",
                 lambda: self.count() >= target, timeout)

    def acked_by(self, member: str, before: float = float("inf")) -> dict[str, Ack]:
        with self._lock:
            return {k: a for k, a in self.acked.items() if a.member == member and a.at < before}

    def verify(self, members: list[str], *, serializable: bool = True) -> None:
        """Every acknowledged key is on every member in ``members``, with its value and revision."""
        with self._lock:
            acked = dict(self.acked)
        assert acked, "no write was acknowledged"
        revisions = [a.revision for a in acked.values()]
        assert len(set(revisions)) == len(revisions), "two acknowledged writes got the same revision"
        for name in members:
            data = dump(self.cluster.http, self.cluster.url(name), prefix=self.prefix,
                        serializable=serializable, timeout=10.0)
            lost = [k for k in acked if k not in data]
            assert not lost, (f"{name} lost {len(lost)} of {len(acked)} acknowledged writes, e.g. "
                              f"{[(k, acked[k]) for k in lost[:5]]} (seed {self.seed})")
            wrong = [(k, acked[k], data[k]) for k in acked
                     if data[k][0] != acked[k].value or data[k][2] != acked[k].revision]
            assert not wrong, f"{name} holds acknowledged keys with another value/revision: {wrong[:5]}"
            phantom = [k for k in data if k not in acked and k not in self.unknown]
            assert not phantom, f"{name} holds keys that were never written or were refused: {phantom[:5]}"
