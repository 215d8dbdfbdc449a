"""A real front worker process (app/front/worker.py) in front of a fake member played by the test.

The test holds the member's three ends: the listening TCP socket the worker accepts on, the channel
socketpair on which the worker sends request frames and receives answers, and the abstract Unix socket
that stands for the member's own HTTP server, where spliced connections arrive. So a test sees exactly
which frames and which spliced bytes a client's request turns into, without a server behind them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

from etcdpy.app.front import frames
from tests.servers import REPO_ROOT

PATHS = ("/v3/kv/put", "/v3/kv/range")
TIMEOUT_S = 10.0


class FakeMember:
    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.http_name = f"etcdpy-test-front-{os.getpid()}-{os.urandom(4).hex()}"
        self.http = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.http.bind("\0" + self.http_name)
        self.http.listen(64)
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        cmd = [sys.executable, "-m", "etcdpy.app.front.worker", "--channel-fd", str(theirs.fileno()),
               "--member-http", self.http_name, "--paths", ",".join(PATHS), "--parent", str(os.getpid()),
               "--listen-fd", str(self.listener.fileno()), "--decode", "/v3/kv/put=PutRequest"]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(), self.listener.fileno()), env=env)
        theirs.close()
        self.reader = frames.FrameReader()
        self.queued: list[list[Any]] = []

    def next_frame(self, timeout: float = TIMEOUT_S) -> list[Any]:
        deadline = time.monotonic() + timeout
        while not self.queued:
            self.channel.settimeout(max(deadline - time.monotonic(), 0.001))
            data = self.channel.recv(65536)
            assert data, "the worker closed its channel"
            self.queued += self.reader.feed(data)
        return self.queued.pop(0)

    def answer(self, rid: int, status: int, headers: list[list[bytes]], body: bytes | dict[str, Any]) -> None:
        self.channel.sendall(frames.encode([frames.RESPONSE, rid, status, headers, body]))

    def accept_splice(self, timeout: float = TIMEOUT_S) -> socket.socket:
        self.http.settimeout(timeout)
        conn, _ = self.http.accept()
        conn.settimeout(timeout)
        return conn

    def close(self) -> None:
        self.channel.close()
        try:
            self.proc.wait(timeout=TIMEOUT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.listener.close()
            self.http.close()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data
