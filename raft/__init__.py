"""etcdpy's Raft consensus core: pure and deterministic, modelled on etcd's raft package.

Drive it through RawNode; see Ready for the order in which its output must be handled.
"""

from raft.confcodec import (
    conf_change_from_entry,
    conf_change_to_entry,
    decode_conf_change,
    encode_conf_change,
)
from raft.config import NO_LIMIT, Config, ReadOnlyOption
from raft.errors import (
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
from raft.rawnode import ProgressStatus, RawNode, Status
from raft.storage import MemoryStorage, Storage
from raft.types import (
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
