"""Throughput benchmark of the Raft core: a 3-node in-memory cluster committing proposals in batches.

Messages are passed in-process and storage is MemoryStorage, so this measures the Python
cost of the consensus core alone (append, replication, commit, Ready construction), not I/O.

    python bench/raft_bench.py [--entries 300000] [--batch 256] [--size 64] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from etcdpy.raft import Config, MemoryStorage, Message, Peer, RawNode, StateType  # noqa: E402


class Cluster:
    def __init__(self, n: int = 3) -> None:
        self.ids = list(range(1, n + 1))
        self.storages = {i: MemoryStorage() for i in self.ids}
        self.nodes = {
            i: RawNode(Config(id=i, storage=self.storages[i], election_tick=10, heartbeat_tick=1,
                              max_inflight_msgs=256, rng=random.Random(i)))
            for i in self.ids
        }
        for rn in self.nodes.values():
            rn.bootstrap([Peer(i) for i in self.ids])
        self.inbox: dict[int, list[Message]] = {i: [] for i in self.ids}
        self.applied = dict.fromkeys(self.ids, 0)

    def process(self) -> bool:
        """Handle every node's Ready (persist, send, apply, advance), then deliver all messages."""
        busy = False
        for i, rn in self.nodes.items():
            if not rn.has_ready():
                continue
            busy = True
            rd = rn.ready()
            st = self.storages[i]
            if rd.hard_state is not None:
                st.set_hard_state(rd.hard_state)
            if rd.entries:
                st.append(rd.entries)
            for m in rd.messages:
                self.inbox[m.to].append(m)
            if rd.committed_entries:
                self.applied[i] += len(rd.committed_entries)
            rn.advance(rd)
        for i, msgs in self.inbox.items():
            if msgs:
                busy = True
                self.inbox[i] = []
                rn = self.nodes[i]
                for m in msgs:
                    rn.step(m)
        return busy

    def elect(self, leader: int) -> None:
        # Apply the bootstrap conf changes first: a node with unapplied conf changes won't campaign.
        while self.process():
            pass
        self.nodes[leader].campaign()
        while self.process():
            pass
        assert self.nodes[leader].raft.state == StateType.LEADER


def run(total: int, batch: int, size: int) -> tuple[float, int]:
    c = Cluster(3)
    c.elect(1)
    leader = c.nodes[1]
    payload = [os.urandom(size) for _ in range(batch)]
    start_applied = min(c.applied.values())
    t0 = time.perf_counter()
    proposed = 0
    while proposed < total:
        leader.propose_many(payload)
        proposed += batch
        # One round: leader persists+sends, followers append+ack, leader commits.
        c.process()
        c.process()
    while c.process():
        pass
    elapsed = time.perf_counter() - t0
    done = min(c.applied.values()) - start_applied
    # Keep memory flat between runs, like a server compacting after snapshots.
    return elapsed, done


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    if a.profile:
        prof = cProfile.Profile()
        prof.enable()
        elapsed, done = run(a.entries, a.batch, a.size)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    else:
        run(20_000, a.batch, a.size)  # warm-up
        elapsed, done = run(a.entries, a.batch, a.size)
    print(f"3-node cluster, batch={a.batch}, entry size={a.size}B: {done} entries committed and applied "
          f"on all nodes in {elapsed:.2f}s = {done / elapsed:,.0f} entries/s")


if __name__ == "__main__":
    main()
