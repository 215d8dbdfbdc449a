"""A small scripted environment driving RawNodes for golden interaction traces.

Script format (one block per command, datadriven style)::

    # comment
    command arg arg key=value
    ----
    expected output

Commands are documented on InteractionEnv.run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from etcdpy.raft import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    Config,
    ConfState,
    EntryType,
    MemoryStorage,
    Message,
    RawNode,
    ReadOnlyOption,
    Snapshot,
    SnapshotMetadata,
    SnapshotStatus,
    conf_change_from_entry,
)
from etcdpy.raft.describe import describe_entry, describe_message, describe_ready, describe_soft_state
from etcdpy.raft.errors import RaftError


class AppStorage(MemoryStorage):
    """MemoryStorage whose snapshot() is taken on demand at the driver's applied index.

    That is what etcd's server does when it sends a snapshot (it snapshots its current
    state), and it keeps a member added after the last periodic snapshot from receiving a
    snapshot whose ConfState does not name it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.source: Callable[[], tuple[int, ConfState]] | None = None

    def snapshot(self) -> Snapshot:
        if self.source is not None:
            applied, cs = self.source()
            if self.snap.metadata.index < applied <= self.last_index():
                self.create_snapshot(applied, copy_conf_state(cs), b"")
        return self.snap


def copy_conf_state(cs: ConfState) -> ConfState:
    return ConfState(list(cs.voters), list(cs.learners), list(cs.voters_outgoing), list(cs.learners_next),
                     cs.auto_leave)


@dataclass
class Node:
    rn: RawNode
    storage: MemoryStorage
    conf_state: ConfState
    applied: list[bytes] = field(default_factory=list)


def _ids(s: str) -> list[int]:
    s = s.strip("()")
    return [int(x) for x in s.replace(",", " ").split()] if s else []


def parse_conf_changes(args: list[str]) -> tuple[list[ConfChangeSingle], ConfChangeTransition, bool]:
    """Parse tokens like v1 l4 r3 [transition=implicit|explicit|auto] [v1] (v1 = legacy ConfChange)."""
    ccs: list[ConfChangeSingle] = []
    transition = ConfChangeTransition.AUTO
    v1 = False
    for a in args:
        if a.startswith("transition="):
            transition = {
                "auto": ConfChangeTransition.AUTO,
                "implicit": ConfChangeTransition.JOINT_IMPLICIT,
                "explicit": ConfChangeTransition.JOINT_EXPLICIT,
            }[a.split("=", 1)[1]]
        elif a == "v1":
            v1 = True
        else:
            t = {"v": ConfChangeType.ADD_NODE, "l": ConfChangeType.ADD_LEARNER_NODE,
                 "r": ConfChangeType.REMOVE_NODE}[a[0]]
            ccs.append(ConfChangeSingle(t, int(a[1:])))
    return ccs, transition, v1


class InteractionEnv:
    def __init__(self) -> None:
        self.nodes: dict[int, Node] = {}
        # Messages in flight, in send order.
        self.queue: list[Message] = []
        self.isolated: set[int] = set()
        self.out: list[str] = []

    def p(self, s: str) -> None:
        self.out.append(s)

    # -- commands -----------------------------------------------------------------------

    def run(self, cmd: str, args: list[str]) -> str:
        self.out = []
        pos = [a for a in args if "=" not in a]
        kw = dict(a.split("=", 1) for a in args if "=" in a)
        try:
            getattr(self, "cmd_" + cmd.replace("-", "_"))(pos, kw)
        except RaftError as e:
            self.p(f"error: {type(e).__name__}: {e}")
        return "\n".join(self.out) if self.out else "ok"

    def cmd_add_nodes(self, pos: list[str], kw: dict[str, str]) -> None:
        """add-nodes N voters=(1,2,3) [learners=(4)] [index=2] [pre-vote=true] [check-quorum=true]..."""
        n = int(pos[0])
        voters = _ids(kw.get("voters", "()"))
        learners = _ids(kw.get("learners", "()"))
        index = int(kw.get("index", "0"))
        first = max(self.nodes, default=0) + 1
        for id_ in range(first, first + n):
            st = AppStorage()
            cs = ConfState(voters=voters, learners=learners)
            if index > 0:
                st.apply_snapshot(Snapshot(metadata=SnapshotMetadata(cs, index, 1)))
            cfg = Config(
                id=id_, storage=st, election_tick=int(kw.get("election", "10")), heartbeat_tick=1,
                applied=index, pre_vote=kw.get("pre-vote") == "true",
                check_quorum=kw.get("check-quorum") == "true",
                max_size_per_msg=int(kw.get("max-size-per-msg", "0")),
                max_inflight_msgs=int(kw.get("max-inflight", "256")),
                read_only_option=ReadOnlyOption.LEASE_BASED if kw.get("read-only") == "lease"
                else ReadOnlyOption.SAFE,
                rng=random.Random(id_),
            )
            node = Node(RawNode(cfg), st, cs)
            self.nodes[id_] = node
            st.source = self._state_of(node)
            self.p(f"INFO {id_} became follower at term 0 (snapshot index {index}, conf {voters}/{learners})")

    @staticmethod
    def _state_of(node: Node) -> Callable[[], tuple[int, ConfState]]:
        return lambda: (node.rn.raft.raft_log.applied, node.conf_state)

    def cmd_campaign(self, pos: list[str], kw: dict[str, str]) -> None:
        self.nodes[int(pos[0])].rn.campaign()
        self._report_state(int(pos[0]))

    def _report_state(self, id_: int) -> None:
        r = self.nodes[id_].rn.raft
        self.p(f"{id_} is {r.state.name} term={r.term} lead={r.lead}")

    def cmd_tick_election(self, pos: list[str], kw: dict[str, str]) -> None:
        rn = self.nodes[int(pos[0])].rn
        for _ in range(rn.raft.randomized_election_timeout):
            rn.tick()
        self._report_state(int(pos[0]))

    def cmd_tick_heartbeat(self, pos: list[str], kw: dict[str, str]) -> None:
        rn = self.nodes[int(pos[0])].rn
        for _ in range(int(pos[1]) if len(pos) > 1 else rn.raft.heartbeat_timeout):
            rn.tick()
        self._report_state(int(pos[0]))

    def cmd_tick(self, pos: list[str], kw: dict[str, str]) -> None:
        rn = self.nodes[int(pos[0])].rn
        for _ in range(int(pos[1])):
            rn.tick()
        self._report_state(int(pos[0]))

    def cmd_propose(self, pos: list[str], kw: dict[str, str]) -> None:
        self.nodes[int(pos[0])].rn.propose(pos[1].encode())

    def cmd_propose_many(self, pos: list[str], kw: dict[str, str]) -> None:
        self.nodes[int(pos[0])].rn.propose_many([p.encode() for p in pos[1:]])

    def cmd_propose_conf_change(self, pos: list[str], kw: dict[str, str]) -> None:
        args = pos[1:] + [f"{k}={v}" for k, v in kw.items()]
        ccs, transition, v1 = parse_conf_changes(args)
        rn = self.nodes[int(pos[0])].rn
        if v1:
            assert len(ccs) == 1
            rn.propose_conf_change(ConfChange(ccs[0].type, ccs[0].node_id))
        else:
            rn.propose_conf_change(ConfChangeV2(ccs, transition))

    def cmd_read_index(self, pos: list[str], kw: dict[str, str]) -> None:
        self.nodes[int(pos[0])].rn.read_index(pos[1].encode())

    def cmd_transfer_leader(self, pos: list[str], kw: dict[str, str]) -> None:
        self.nodes[int(pos[0])].rn.transfer_leader(int(pos[1]))

    def cmd_report_snapshot(self, pos: list[str], kw: dict[str, str]) -> None:
        st = SnapshotStatus.FINISH if pos[2] == "finish" else SnapshotStatus.FAILURE
        self.nodes[int(pos[0])].rn.report_snapshot(int(pos[1]), st)

    def cmd_report_unreachable(self, pos: list[str], kw: dict[str, str]) -> None:
        self.nodes[int(pos[0])].rn.report_unreachable(int(pos[1]))

    def cmd_isolate(self, pos: list[str], kw: dict[str, str]) -> None:
        self.isolated.add(int(pos[0]))

    def cmd_heal(self, pos: list[str], kw: dict[str, str]) -> None:
        self.isolated.clear()

    def cmd_compact(self, pos: list[str], kw: dict[str, str]) -> None:
        """compact ID INDEX: snapshot the applied state at INDEX and drop older log entries."""
        n = self.nodes[int(pos[0])]
        idx = int(pos[1])
        n.storage.create_snapshot(idx, n.conf_state, b"")
        n.storage.compact(idx)
        self.p(f"{pos[0]} compacted to {idx}; first index {n.storage.first_index()}")

    def cmd_status(self, pos: list[str], kw: dict[str, str]) -> None:
        st = self.nodes[int(pos[0])].rn.status()
        for id_, pr in st.progress.items():
            s = f"{id_}: {pr.state.name} match={pr.match} next={pr.next}"
            if pr.is_learner:
                s += " learner"
            if pr.paused:
                s += " paused"
            self.p(s)
        if not st.progress:
            self.p(describe_soft_state(st.soft_state))

    def cmd_raft_log(self, pos: list[str], kw: dict[str, str]) -> None:
        n = self.nodes[int(pos[0])]
        rl = n.rn.raft.raft_log
        ents = rl.all_entries()
        if not ents:
            self.p(f"log is empty: first index={rl.first_index()}, last index={rl.last_index()}")
        for e in ents:
            self.p(describe_entry(e))

    def cmd_raft_state(self, pos: list[str], kw: dict[str, str]) -> None:
        for id_ in sorted(self.nodes):
            r = self.nodes[id_].rn.raft
            self.p(f"{id_}: {r.state.name} term={r.term} lead={r.lead} commit={r.raft_log.committed} "
                   f"applied={r.raft_log.applied} conf={r.prs.config!r}")

    def cmd_process_ready(self, pos: list[str], kw: dict[str, str]) -> None:
        for id_ in self._which(pos):
            self._process_ready(id_)

    def cmd_deliver_msgs(self, pos: list[str], kw: dict[str, str]) -> None:
        for id_ in self._which(pos):
            self._deliver(id_)

    def cmd_stabilize(self, pos: list[str], kw: dict[str, str]) -> None:
        ids = self._which(pos)
        while True:
            done = True
            for id_ in ids:
                if self.nodes[id_].rn.has_ready():
                    self._process_ready(id_)
                    done = False
            for id_ in ids:
                if any(m.to == id_ for m in self.queue):
                    self._deliver(id_)
                    done = False
            if done:
                return

    # -- mechanics ----------------------------------------------------------------------

    def _which(self, pos: list[str]) -> list[int]:
        return [int(x) for x in pos] if pos else sorted(self.nodes)

    def _process_ready(self, id_: int) -> None:
        n = self.nodes[id_]
        if not n.rn.has_ready():
            return
        rd = n.rn.ready()
        self.p(f"> {id_} handling Ready")
        self.p("\n".join("  " + line for line in describe_ready(rd).split("\n")))
        # Persist, then send, then apply: the Ready contract.
        if rd.hard_state is not None:
            n.storage.set_hard_state(rd.hard_state)
        if rd.snapshot is not None:
            n.storage.apply_snapshot(rd.snapshot)
            n.conf_state = rd.snapshot.metadata.conf_state
        n.storage.append(rd.entries)
        self.queue.extend(rd.messages)
        for e in rd.committed_entries:
            if e.type == EntryType.NORMAL:
                if e.data:
                    n.applied.append(e.data)
            else:
                n.conf_state = n.rn.apply_conf_change(conf_change_from_entry(e))
                self.p(f"  INFO {id_} switched to configuration {n.rn.raft.prs.config!r}")
        n.rn.advance(rd)

    def _deliver(self, id_: int) -> None:
        msgs = [m for m in self.queue if m.to == id_]
        if not msgs:
            return
        self.queue = [m for m in self.queue if m.to != id_]
        self.p(f"> {id_} receiving messages")
        n = self.nodes[id_]
        for m in msgs:
            if m.frm in self.isolated or m.to in self.isolated:
                self.p(f"  {describe_message(m)} DROPPED")
                continue
            self.p(f"  {describe_message(m)}")
            try:
                n.rn.step(m)
            except RaftError as e:
                self.p(f"  error: {type(e).__name__}: {e}")


def parse_script(text: str) -> list[tuple[str, list[str], str]]:
    """Split a trace file into (command, args, expected output) blocks."""
    blocks: list[tuple[str, list[str], str]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            i += 1
            continue
        parts = line.split()
        i += 1
        if i >= len(lines) or lines[i] != "----":
            raise ValueError(f"expected ---- after command {line!r}")
        i += 1
        out = []
        while i < len(lines) and lines[i] != "":
            out.append(lines[i])
            i += 1
        blocks.append((parts[0], parts[1:], "\n".join(out)))
    return blocks


def render_script(blocks: list[tuple[str, list[str], str]], comments: dict[int, list[str]]) -> str:
    out: list[str] = []
    for i, (cmd, args, result) in enumerate(blocks):
        out.extend(comments.get(i, []))
        out.append(" ".join([cmd, *args]))
        out.append("----")
        out.append(result)
        out.append("")
    return "\n".join(out)
