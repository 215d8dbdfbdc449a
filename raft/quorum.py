"""Quorum arithmetic: committed index and vote outcome for majority and joint configurations.

Pure functions over sets of voter ids; knows nothing about Progress beyond a lookup
of acknowledged indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import IntEnum


class VoteResult(IntEnum):
    PENDING = 1
    LOST = 2
    WON = 3


class MajorityConfig:
    __slots__ = ("ids",)

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self.ids: set[int] = set(ids)

    def __repr__(self) -> str:
        return "(" + " ".join(str(i) for i in sorted(self.ids)) + ")"

    def __len__(self) -> int:
        return len(self.ids)

    def committed_index(self, acked: Callable[[int], int | None]) -> int:
        """Largest index acknowledged by a majority. An empty config commits everything."""
        n = len(self.ids)
        if n == 0:
            # An empty half of a joint config must not constrain the other half (min with it).
            return 1 << 62
        if n == 1:
            for i in self.ids:
                v = acked(i)
                return v if v is not None else 0
        srt = []
        for i in self.ids:
            v = acked(i)
            srt.append(v if v is not None else 0)
        srt.sort(reverse=True)
        return srt[n // 2]

    def vote_result(self, votes: dict[int, bool]) -> VoteResult:
        if not self.ids:
            # Like the empty committed index: an empty config wins, so joint configs reduce properly.
            return VoteResult.WON
        granted = rejected = 0
        missing = 0
        for i in self.ids:
            v = votes.get(i)
            if v is None:
                missing += 1
            elif v:
                granted += 1
            else:
                rejected += 1
        q = len(self.ids) // 2 + 1
        if granted >= q:
            return VoteResult.WON
        if granted + missing >= q:
            return VoteResult.PENDING
        return VoteResult.LOST


class JointConfig:
    """incoming is the configuration being entered; outgoing is empty unless in joint consensus."""

    __slots__ = ("incoming", "outgoing")

    def __init__(
        self, incoming: MajorityConfig | None = None, outgoing: MajorityConfig | None = None
    ) -> None:
        self.incoming = incoming if incoming is not None else MajorityConfig()
        self.outgoing = outgoing if outgoing is not None else MajorityConfig()

    def __repr__(self) -> str:
        if self.outgoing.ids:
            return f"{self.incoming}&&{self.outgoing}"
        return repr(self.incoming)

    def ids(self) -> set[int]:
        return self.incoming.ids | self.outgoing.ids

    def committed_index(self, acked: Callable[[int], int | None]) -> int:
        a = self.incoming.committed_index(acked)
        if not self.outgoing.ids:
            return a
        return min(a, self.outgoing.committed_index(acked))

    def vote_result(self, votes: dict[int, bool]) -> VoteResult:
        r1 = self.incoming.vote_result(votes)
        r2 = self.outgoing.vote_result(votes)
        if r1 == r2:
            return r1
        if VoteResult.LOST in (r1, r2):
            return VoteResult.LOST
        return VoteResult.PENDING
