"""Raft messages on the wire between peers: msgpack arrays, field by field.

A batch of messages travels in one HTTP request body; a snapshot message travels as the header of a
snapshot stream, the database following it.
"""

from __future__ import annotations

from typing import Any

import msgpack

from etcdpy.raft import ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata


def _entry(e: Entry) -> list[Any]:
    return [e.term, e.index, int(e.type), e.data]


def _conf_state(cs: ConfState) -> list[Any]:
    return [cs.voters, cs.learners, cs.voters_outgoing, cs.learners_next, cs.auto_leave]


def _message(m: Message) -> list[Any]:
    snap = None
    if m.snapshot is not None:
        md = m.snapshot.metadata
        snap = [md.index, md.term, _conf_state(md.conf_state)]
    return [int(m.type), m.to, m.frm, m.term, m.log_term, m.index, [_entry(e) for e in m.entries], m.commit,
            snap, m.reject, m.reject_hint, m.context]


def _unmessage(d: list[Any]) -> Message:
    mtype, to, frm, term, log_term, index, entries, commit, snap, reject, hint, context = d
    snapshot = None
    if snap is not None:
        voters, learners, outgoing, learners_next, auto_leave = snap[2]
        conf_state = ConfState(voters, learners, outgoing, learners_next, auto_leave)
        snapshot = Snapshot(b"", SnapshotMetadata(conf_state, snap[0], snap[1]))
    return Message(
        type=MessageType(mtype), to=to, frm=frm, term=term, log_term=log_term, index=index,
        entries=[Entry(t, i, EntryType(k), data) for t, i, k, data in entries], commit=commit,
        snapshot=snapshot, reject=reject, reject_hint=hint, context=context,
    )


def encode_messages(messages: list[Message]) -> bytes:
    return msgpack.packb([_message(m) for m in messages], use_bin_type=True)


def decode_messages(data: bytes) -> list[Message]:
    return [_unmessage(d) for d in msgpack.unpackb(data, raw=False)]
