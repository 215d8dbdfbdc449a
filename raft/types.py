"""Plain data types exchanged between the Raft core and its driver.

Everything here is a slotted dataclass of ints, bytes, lists and enums so that the
application can serialise it field by field (msgpack) without knowing Raft internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

# Index 0 / term 0 mean "none": logs start at index 1 and the first real term is 1.
NONE = 0


class EntryType(IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1
    CONF_CHANGE_V2 = 2


@dataclass(slots=True)
class Entry:
    term: int = 0
    index: int = 0
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(slots=True)
class HardState:
    """State that must be on stable storage before any message of the same Ready is sent."""

    term: int = 0
    vote: int = 0
    commit: int = 0

    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == 0 and self.commit == 0


class StateType(IntEnum):
    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2
    PRE_CANDIDATE = 3


@dataclass(slots=True)
class SoftState:
    """Volatile state that is useful to the driver (logging, routing) but never persisted."""

    lead: int = 0
    raft_state: StateType = StateType.FOLLOWER


@dataclass(slots=True)
class ConfState:
    voters: list[int] = field(default_factory=list)
    learners: list[int] = field(default_factory=list)
    # Non-empty only while in a joint configuration: the voters of the configuration being left.
    voters_outgoing: list[int] = field(default_factory=list)
    # Voters that become learners when the joint configuration is left (they cannot be both at once).
    learners_next: list[int] = field(default_factory=list)
    auto_leave: bool = False

    def equivalent(self, other: ConfState) -> bool:
        return (
            sorted(self.voters) == sorted(other.voters)
            and sorted(self.learners) == sorted(other.learners)
            and sorted(self.voters_outgoing) == sorted(other.voters_outgoing)
            and sorted(self.learners_next) == sorted(other.learners_next)
            and self.auto_leave == other.auto_leave
        )


@dataclass(slots=True)
class SnapshotMetadata:
    conf_state: ConfState = field(default_factory=ConfState)
    index: int = 0
    term: int = 0


@dataclass(slots=True)
class Snapshot:
    data: bytes = b""
    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)

    def is_empty(self) -> bool:
        return self.metadata.index == 0


class ConfChangeType(IntEnum):
    ADD_NODE = 0
    REMOVE_NODE = 1
    ADD_LEARNER_NODE = 2


class ConfChangeTransition(IntEnum):
    # AUTO: joint consensus only if more than one change, leaving it automatically.
    AUTO = 0
    # Always enter a joint configuration and leave it automatically once committed.
    JOINT_IMPLICIT = 1
    # Always enter a joint configuration and wait for an explicit empty ConfChangeV2 to leave.
    JOINT_EXPLICIT = 2


@dataclass(slots=True)
class ConfChangeSingle:
    type: ConfChangeType = ConfChangeType.ADD_NODE
    node_id: int = 0


@dataclass(slots=True)
class ConfChange:
    """A single membership change (etcd's ConfChange, v1)."""

    type: ConfChangeType = ConfChangeType.ADD_NODE
    node_id: int = 0
    context: bytes = b""
    id: int = 0

    def as_v2(self) -> ConfChangeV2:
        return ConfChangeV2(changes=[ConfChangeSingle(self.type, self.node_id)], context=self.context)


@dataclass(slots=True)
class ConfChangeV2:
    """Several membership changes applied together; an empty change list leaves a joint config."""

    changes: list[ConfChangeSingle] = field(default_factory=list)
    transition: ConfChangeTransition = ConfChangeTransition.AUTO
    context: bytes = b""

    def as_v2(self) -> ConfChangeV2:
        return self

    def enter_joint(self) -> tuple[bool, bool]:
        """Return (use_joint, auto_leave) for this change, following etcd's rules."""
        if self.transition != ConfChangeTransition.AUTO or len(self.changes) > 1:
            return True, self.transition in (ConfChangeTransition.AUTO, ConfChangeTransition.JOINT_IMPLICIT)
        return False, False

    def leave_joint(self) -> bool:
        return not self.changes and not self.context and self.transition == ConfChangeTransition.AUTO


class MessageType(IntEnum):
    MsgHup = 0
    MsgBeat = 1
    MsgProp = 2
    MsgApp = 3
    MsgAppResp = 4
    MsgVote = 5
    MsgVoteResp = 6
    MsgSnap = 7
    MsgHeartbeat = 8
    MsgHeartbeatResp = 9
    MsgUnreachable = 10
    MsgSnapStatus = 11
    MsgCheckQuorum = 12
    MsgTransferLeader = 13
    MsgTimeoutNow = 14
    MsgReadIndex = 15
    MsgReadIndexResp = 16
    MsgPreVote = 17
    MsgPreVoteResp = 18


# Messages that a node generates for itself and that must never arrive over the network.
LOCAL_MESSAGES = frozenset(
    {
        MessageType.MsgHup,
        MessageType.MsgBeat,
        MessageType.MsgUnreachable,
        MessageType.MsgSnapStatus,
        MessageType.MsgCheckQuorum,
    }
)

RESPONSE_MESSAGES = frozenset(
    {
        MessageType.MsgAppResp,
        MessageType.MsgVoteResp,
        MessageType.MsgHeartbeatResp,
        MessageType.MsgUnreachable,
        MessageType.MsgPreVoteResp,
    }
)


def vote_resp_type(t: MessageType) -> MessageType:
    if t == MessageType.MsgVote:
        return MessageType.MsgVoteResp
    if t == MessageType.MsgPreVote:
        return MessageType.MsgPreVoteResp
    raise ValueError(f"not a vote message: {t!r}")


@dataclass(slots=True)
class Message:
    type: MessageType = MessageType.MsgHup
    to: int = 0
    frm: int = 0
    term: int = 0
    # Term of the entry at `index` (MsgApp) or of the candidate's last entry (votes).
    log_term: int = 0
    index: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""


@dataclass(slots=True)
class ReadState:
    """A linearizable read may be served once the applied index reaches `index`."""

    index: int = 0
    request_ctx: bytes = b""


class SnapshotStatus(IntEnum):
    FINISH = 1
    FAILURE = 2


class ProgressStateType(IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


@dataclass(slots=True)
class Peer:
    id: int = 0
    context: bytes = b""


@dataclass(slots=True)
class Ready:
    """Everything the driver must do, in this order, before calling RawNode.advance(rd):

    1. Persist ``hard_state`` (if not None), append ``entries`` and install ``snapshot`` (if not
       None) to stable storage, atomically or at least entries before the hard state (a commit
       index must never be durable without the entries it covers). ``must_sync`` says whether an
       fsync is required.
    2. Send ``messages``. As in etcd 3.4, every message of a Ready is sent only after step 1:
       a vote or an append acknowledgement must never leave before the state it promises is durable.
    3. Apply ``committed_entries`` to the state machine (for conf-change entries call
       RawNode.apply_conf_change). They are never ahead of what step 1 made durable locally.
    4. Serve ``read_states`` once the applied index reaches each state's index.
    5. Call ``advance(rd)``.

    ``soft_state`` is informational (leader / role changes) and is None when unchanged.

    A leader counts its own copy of an entry as soon as it appends it (etcd 3.4 style), so a
    one-member cluster returns a proposal in ``entries`` and ``committed_entries`` of the same
    Ready; the order above (persist before apply) keeps that durable.
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    read_states: list[ReadState] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    committed_entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    must_sync: bool = False

    def contains_updates(self) -> bool:
        return bool(
            self.soft_state is not None
            or self.hard_state is not None
            or self.snapshot is not None
            or self.entries
            or self.committed_entries
            or self.messages
            or self.read_states
        )

    def applied_cursor(self) -> int:
        """The index the driver will have applied after handling this Ready (0 if nothing)."""
        if self.committed_entries:
            return self.committed_entries[-1].index
        if self.snapshot is not None and self.snapshot.metadata.index > 0:
            return self.snapshot.metadata.index
        return 0


def entry_size(e: Entry) -> int:
    # An approximation of the encoded size: payload plus a fixed header, like etcd's proto size.
    return len(e.data) + 16


def payload_size(e: Entry) -> int:
    return len(e.data)
