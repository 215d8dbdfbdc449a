"""etcdpy's Raft consensus core: pure and deterministic, modelled on etcd's raft package.

Drive it through RawNode; see Ready for the order in which its output must be handled.
A driver's loop, in outline::

    rn = RawNode(Config(id=1, storage=storage, check_quorum=True, pre_vote=True, rng=Random(seed)))
    every tick interval:        rn.tick()
    on a peer message m:        rn.step(m)
    on a client write:          rn.propose(data)        # ErrProposalDropped: retry / redirect
    on a linearizable read:     rn.read_index(ctx)      # answered by a ReadState in a Ready
    whenever rn.has_ready():
        rd = rn.ready()
        persist rd.hard_state, rd.snapshot, rd.entries   # fsync if rd.must_sync
        send rd.messages                                 # report_unreachable / report_snapshot
        apply rd.committed_entries                       # conf changes: rn.apply_conf_change(cc)
        serve rd.read_states once applied >= rs.index
        rn.advance(rd)
"""

from etcdpy.raft.confcodec import (
    conf_change_from_entry,
    conf_change_to_entry,
    decode_conf_change,
    encode_conf_change,
)
from etcdpy.raft.config import NO_LIMIT, Config, ReadOnlyOption
from etcdpy.raft.errors import (
    ErrCompacted,
    ErrConfChangeInvalid,
    ErrConfigInvalid,
    ErrProposalDropped,
    ErrSnapOutOfDate,
    ErrSnapshotTemporarilyUnavailable,
    ErrStepLocalMsg,
    ErrStepPeerNotFound,
    ErrUnavailable,
    RaftError,
)
from etcdpy.raft.rawnode import ProgressStatus, RawNode, Status
from etcdpy.raft.storage import MemoryStorage, Storage
from etcdpy.raft.types import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Peer,
    ProgressStateType,
    ReadState,
    Ready,
    Snapshot,
    SnapshotMetadata,
    SnapshotStatus,
    SoftState,
    StateType,
)

__all__ = [
    "NO_LIMIT", "Config", "ReadOnlyOption",
    "conf_change_from_entry", "conf_change_to_entry", "decode_conf_change", "encode_conf_change",
    "ErrCompacted", "ErrConfChangeInvalid", "ErrConfigInvalid", "ErrProposalDropped", "ErrSnapOutOfDate",
    "ErrSnapshotTemporarilyUnavailable", "ErrStepLocalMsg", "ErrStepPeerNotFound", "ErrUnavailable",
    "RaftError",
    "ProgressStatus", "RawNode", "Status",
    "MemoryStorage", "Storage",
    "ConfChange", "ConfChangeSingle", "ConfChangeTransition", "ConfChangeType", "ConfChangeV2", "ConfState",
    "Entry", "EntryType", "HardState", "Message", "MessageType", "Peer", "ProgressStateType", "Ready",
    "ReadState", "Snapshot", "SnapshotMetadata", "SnapshotStatus", "SoftState", "StateType",
]
