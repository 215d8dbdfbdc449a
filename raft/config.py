"""Config: the knobs of one Raft node, and their validation."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import IntEnum

from etcdpy.raft.errors import ErrConfigInvalid
from etcdpy.raft.storage import Storage

NO_LIMIT = 1 << 62


class ReadOnlyOption(IntEnum):
    # Confirm leadership with a heartbeat round for every read index batch: safe under clock skew.
    SAFE = 0
    # Trust the leader lease kept alive by check-quorum: cheaper but assumes bounded clock drift.
    LEASE_BASED = 1


@dataclass
class Config:
    id: int
    storage: Storage
    election_tick: int = 10
    heartbeat_tick: int = 1
    # Entries up to here are already applied by the driver and will not be returned again.
    applied: int = 0
    max_size_per_msg: int = NO_LIMIT
    max_committed_size_per_ready: int = NO_LIMIT
    max_uncommitted_entries_size: int = NO_LIMIT
    max_inflight_msgs: int = 256
    check_quorum: bool = False
    pre_vote: bool = False
    read_only_option: ReadOnlyOption = ReadOnlyOption.SAFE
    disable_proposal_forwarding: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def validate(self) -> None:
        if self.id == 0:
            raise ErrConfigInvalid("cannot use 0 as id")
        if self.heartbeat_tick <= 0:
            raise ErrConfigInvalid("heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ErrConfigInvalid("election tick must be greater than heartbeat tick")
        if self.storage is None:
            raise ErrConfigInvalid("storage cannot be nil")
        if self.max_uncommitted_entries_size <= 0:
            self.max_uncommitted_entries_size = NO_LIMIT
        if self.max_committed_size_per_ready <= 0:
            self.max_committed_size_per_ready = NO_LIMIT
        if self.max_size_per_msg <= 0:
            self.max_size_per_msg = NO_LIMIT
        if self.max_inflight_msgs <= 0:
            raise ErrConfigInvalid("max inflight messages must be greater than 0")
        if self.read_only_option == ReadOnlyOption.LEASE_BASED and not self.check_quorum:
            raise ErrConfigInvalid("check_quorum must be enabled when read_only_option is LEASE_BASED")
