"""One-line, human-readable renderings of messages, entries, states and Ready for traces."""

from __future__ import annotations

from etcdpy.raft.confcodec import conf_change_from_entry
from etcdpy.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    Ready,
    Snapshot,
    SoftState,
)

_CC_PREFIX = {
    ConfChangeType.ADD_NODE: "v",
    ConfChangeType.ADD_LEARNER_NODE: "l",
    ConfChangeType.REMOVE_NODE: "r",
}


def describe_conf_change(cc: ConfChange | ConfChangeV2) -> str:
    v2 = cc.as_v2()
    return " ".join(f"{_CC_PREFIX[c.type]}{c.node_id}" for c in v2.changes)


def describe_entry(e: Entry) -> str:
    if e.type == EntryType.NORMAL:
        body = repr(e.data)[1:] if e.data else ""
        return f"{e.term}/{e.index} EntryNormal {body}".rstrip()
    kind = "EntryConfChange" if e.type == EntryType.CONF_CHANGE else "EntryConfChangeV2"
    return f"{e.term}/{e.index} {kind} {describe_conf_change(conf_change_from_entry(e))}".rstrip()


def describe_entries(ents: list[Entry]) -> str:
    return "[" + ", ".join(describe_entry(e) for e in ents) + "]"


def describe_conf_state(cs: ConfState) -> str:
    def ids(xs: list[int]) -> str:
        return "(" + " ".join(str(i) for i in sorted(xs)) + ")"

    s = f"Voters:{ids(cs.voters)}"
    if cs.voters_outgoing:
        s += f"&&{ids(cs.voters_outgoing)}"
    s += f" Learners:{ids(cs.learners)}"
    if cs.learners_next:
        s += f" LearnersNext:{ids(cs.learners_next)}"
    if cs.auto_leave:
        s += " AutoLeave"
    return s


def describe_snapshot(s: Snapshot) -> str:
    m = s.metadata
    return f"Index:{m.index} Term:{m.term} ConfState:{describe_conf_state(m.conf_state)}"


def describe_hard_state(hs: HardState) -> str:
    return f"HardState Term:{hs.term} Vote:{hs.vote} Commit:{hs.commit}"


def describe_soft_state(ss: SoftState) -> str:
    return f"Lead:{ss.lead} State:{ss.raft_state.name}"


def describe_message(m: Message) -> str:
    s = f"{m.frm}->{m.to} {m.type.name} Term:{m.term} Log:{m.log_term}/{m.index}"
    if m.reject:
        s += f" Rejected (Hint: {m.reject_hint})"
    if m.commit:
        s += f" Commit:{m.commit}"
    if m.context:
        s += f" Context:{m.context!r}"
    if m.entries:
        s += " Entries:" + describe_entries(m.entries)
    if m.snapshot is not None and not m.snapshot.is_empty():
        s += " Snapshot: " + describe_snapshot(m.snapshot)
    return s


def describe_ready(rd: Ready) -> str:
    lines: list[str] = []
    if rd.soft_state is not None:
        lines.append(describe_soft_state(rd.soft_state))
    if rd.hard_state is not None:
        lines.append(describe_hard_state(rd.hard_state))
    if rd.read_states:
        lines.append("ReadStates:")
        lines += [f"  Index:{rs.index} Ctx:{rs.request_ctx!r}" for rs in rd.read_states]
    if rd.entries:
        lines.append("Entries:")
        lines += ["  " + describe_entry(e) for e in rd.entries]
    if rd.snapshot is not None:
        lines.append("Snapshot " + describe_snapshot(rd.snapshot))
    if rd.committed_entries:
        lines.append("CommittedEntries:")
        lines += ["  " + describe_entry(e) for e in rd.committed_entries]
    if rd.messages:
        lines.append("Messages:")
        lines += ["  " + describe_message(m) for m in rd.messages]
    return "\n".join(lines) if lines else "<empty Ready>"
