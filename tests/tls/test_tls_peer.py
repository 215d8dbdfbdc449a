"""The peer transport over TLS, in one process: Raft batches and a streamed snapshot reach a peer
listener that requires a peer certificate (--peer-client-cert-auth), and nothing reaches it from a
member without one. (The whole cluster suite over TLS: ETCDPY_CLUSTER_TLS=1, tests/cluster.)
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

from etcdpy.app.cli import _uvicorn
from etcdpy.app.config import Config
from etcdpy.app.peer.transport import PeerApp, PeerTransport
from etcdpy.app.tls import TLSInfo, client_context, server_context
from etcdpy.raft import Message, MessageType, Snapshot
from etcdpy.raft.types import SnapshotMetadata
from tests.tls_certs import TLSFiles

SNAPSHOT_BYTES = 3 * 256 * 1024 + 17  # several upload chunks


def peer_info(certs: TLSFiles, with_cert: bool = True) -> TLSInfo:
    cert, key = (str(certs.cert), str(certs.key)) if with_cert else ("", "")
    return TLSInfo(cert, key, str(certs.ca), client_cert_auth=True)


def exchange(certs: TLSFiles, tmp_path: Path, dialer: ssl.SSLContext) -> tuple[list[Message], bytes | None,
                                                                               list[tuple[int, bool]]]:
    """Member 1 sends member 2 a heartbeat and a snapshot over https; what member 2 received, and what
    member 1 was told about the snapshot."""
    stepped: list[Message] = []
    received: dict[str, bytes] = {}
    reports: list[tuple[int, bool]] = []

    def receive_snapshot(msg: Message, path: str) -> None:
        received["data"] = Path(path).read_bytes()

    def dump(path: str) -> int:
        Path(path).write_bytes(bytes(range(256)) * (SNAPSHOT_BYTES // 256) + b"x" * (SNAPSHOT_BYTES % 256))
        return SNAPSHOT_BYTES

    async def main() -> None:
        heard = asyncio.Event()  # the heartbeat arrived, or its sender found the peer unreachable

        def step(msg: Message) -> None:
            stepped.append(msg)
            heard.set()

        app = PeerApp(step=step, receive_snapshot=receive_snapshot, members=lambda: {},
                      snapshot_dir=str(tmp_path / "snap"), is_removed=lambda member: False,
                      client_app=lambda scope, receive, send: asyncio.sleep(0))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        url = f"https://127.0.0.1:{sock.getsockname()[1]}"
        server = _uvicorn(app, Config(log_level="warn"), server_context(peer_info(certs)))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        done = asyncio.Event()

        def snapshot_done(peer: int, ok: bool) -> None:
            reports.append((peer, ok))
            done.set()

        transport = PeerTransport(1, unreachable=lambda peer: heard.set(), snapshot_done=snapshot_done,
                                  dump_snapshot=dump, removed=lambda: None, ssl=dialer)
        try:
            while not server.started:
                await asyncio.sleep(0.01)  # uvicorn sets a flag, no event, once it listens
            transport.set_peers({1: "https://unused", 2: url})
            snap = Snapshot(b"", SnapshotMetadata(index=7, term=2))
            transport.send([Message(MessageType.MsgHeartbeat, to=2, frm=1, term=2),
                            Message(MessageType.MsgSnap, to=2, frm=1, term=2, snapshot=snap)])
            await asyncio.wait_for(done.wait(), 30)
            await asyncio.wait_for(heard.wait(), 30)
        finally:
            await transport.close()
            server.should_exit = True
            await serving

    asyncio.run(main())
    return stepped, received.get("data"), reports


def test_raft_messages_and_a_snapshot_go_over_peer_tls(certs: TLSFiles, tmp_path: Path) -> None:
    stepped, data, reports = exchange(certs, tmp_path, client_context(peer_info(certs)))
    assert [m.type for m in stepped] == [MessageType.MsgHeartbeat]
    assert reports == [(2, True)]
    assert data is not None and len(data) == SNAPSHOT_BYTES


def test_a_member_without_a_peer_certificate_reaches_nothing(certs: TLSFiles, tmp_path: Path) -> None:
    stepped, data, reports = exchange(certs, tmp_path, client_context(peer_info(certs, with_cert=False)))
    assert stepped == [] and data is None
    assert reports == [(2, False)]
