"""A member that fell behind a membership change can answer a peer it does not know yet.

Found by the server simulation (seed 20090): a member down while another was added and came to lead
restarted with the old membership, could not send its answers to the new leader, and never caught up.
As in etcd (X-PeerURLs, AddRemote), each batch names its sender's peer URL and the receiver keeps a
sender for it until the membership says otherwise.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from etcdpy.app.peer.transport import PeerApp, PeerTransport
from etcdpy.app.peer.wire import encode_messages
from etcdpy.raft import Message, MessageType


@pytest.mark.parametrize("path", ["/raft/stream", "/raft/messages"])
def test_peer_app_learns_the_sender_of_a_batch(path: str) -> None:
    stepped: list[Message] = []
    remotes: list[tuple[int, str]] = []

    async def noop(scope: Any, receive: Any, send: Any) -> None:
        return None
    app = PeerApp(step=stepped.append, receive_snapshot=lambda m, p: None, members=dict,
                  snapshot_dir="/nonexistent", is_removed=lambda member: False, client_app=noop,
                  add_remote=lambda pid, url: remotes.append((pid, url)))
    body = encode_messages([Message(type=MessageType.MsgHeartbeat, to=1, frm=7, term=3)])
    if path == "/raft/stream":
        body = struct.pack(">I", len(body)) + body  # one frame
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
    scope = {"type": "http", "path": path, "method": "POST",
             "query_string": b"from=http%3A%2F%2F127.0.0.1%3A2380"}
    asyncio.run(app(scope, receive, send))
    assert remotes == [(7, "http://127.0.0.1:2380")]
    assert [m.frm for m in stepped] == [7]
    assert sent[0]["status"] == (200 if path == "/raft/stream" else 204)


def test_transport_keeps_a_remote_until_it_is_a_member() -> None:
    async def main() -> None:
        t = PeerTransport(1, unreachable=lambda p: None, snapshot_done=lambda p, ok: None,
                          dump_snapshot=lambda path: 0, removed=lambda: None, local_url="http://a:2380")
        assert t.query == "?from=http%3A%2F%2Fa%3A2380"
        t.set_peers({2: "http://b:2380"})
        t.add_remote(9, "http://new:2380")
        assert set(t.senders) == {2, 9}
        t.set_peers({2: "http://b:2380"})  # a membership refresh keeps the remote
        assert set(t.senders) == {2, 9}
        t.set_peers({2: "http://b:2380", 9: "http://new:2380"})  # now a member: no longer a remote
        assert t.remotes == {} and set(t.senders) == {2, 9}
        await t.close()
    asyncio.run(main())
