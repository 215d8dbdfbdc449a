"""Errors raised by the Raft core and its storage interface.

Names follow etcd's raft package so that the driver's error handling reads the same.
"""

from __future__ import annotations


class RaftError(Exception):
    """Base class of every error the raft package raises on purpose."""


class ErrCompacted(RaftError):
    """The requested index is older than the storage's first index (it was compacted)."""


class ErrSnapOutOfDate(RaftError):
    """A snapshot older than the storage's current snapshot was offered."""


class ErrUnavailable(RaftError):
    """The requested index is newer than the storage's last index."""


class ErrSnapshotTemporarilyUnavailable(RaftError):
    """The storage cannot produce a snapshot right now; the leader will retry later."""


class ErrProposalDropped(RaftError):
    """The proposal was dropped: no leader known, leadership transfer in progress, or limits hit."""


class ErrStepLocalMsg(RaftError):
    """A local-only message type (MsgHup, MsgBeat, ...) was handed to step() as a network message."""


class ErrStepPeerNotFound(RaftError):
    """A response arrived from a node that is not in the current configuration."""


class ErrConfigInvalid(RaftError):
    """Config.validate() rejected the configuration."""


class ErrConfChangeInvalid(RaftError):
    """A membership change cannot be applied to the current configuration."""
