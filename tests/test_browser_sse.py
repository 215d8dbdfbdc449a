"""A real browser against the SSE watch: headless Chromium (Debian's `chromium`) opens a page whose
`EventSource` watches a key on etcdpy (cross-origin, so CORS is exercised too). A put shows up on the
page; then the connection is cut and writes happen while the browser is away; the browser reconnects
by itself with `Last-Event-ID` and the page ends up with every revision exactly once, in order.

The page reports what it shows to the test's own HTTP server (`POST /report`); a small TCP proxy between
the browser and etcdpy lets the test cut connections and hold reconnects back.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.servers import Server, start_etcdpy

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT_S = 20.0

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>etcdpy watch</title></head>
<body><h1>Watching</h1><ul id="events"></ul>
<script>
const params = new URLSearchParams(location.search);
let seq = 0;
function report(obj) {
  obj.seq = seq++;
  fetch("/report", {method: "POST", body: JSON.stringify(obj)});
}
const source = new EventSource(params.get("sse"));
source.addEventListener("created", (e) => report({type: "created", id: e.lastEventId}));
source.addEventListener("progress", (e) => report({type: "progress", id: e.lastEventId}));
source.onmessage = (e) => {
  const data = JSON.parse(e.data);
  for (const ev of data.events) {
    const li = document.createElement("li");
    li.textContent = e.lastEventId + " " + atob(ev.kv.key) + "=" + atob(ev.kv.value || "");
    document.getElementById("events").appendChild(li);
  }
  const shown = [...document.querySelectorAll("#events li")].map((li) => li.textContent);
  report({type: "events", id: e.lastEventId, shown: shown});
};
source.onerror = () => report({type: "error", state: source.readyState});
</script></body></html>
"""


class Proxy:
    """A TCP proxy whose connections can be cut, and whose new connections can be refused for a while."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refusing = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets += [client, upstream]
                self.accepted += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut()


class Reports:
    def __init__(self) -> None:
        self.items: queue.Queue[dict[str, Any]] = queue.Queue()
        reports = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = PAGE.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                reports.items.put(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, kind: str) -> dict[str, Any]:
        while True:
            item = self.items.get(timeout=TIMEOUT_S)
            if item["type"] == kind:
                return item

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def etcdpy(tmp_path: Path) -> Iterator[Server]:
    srv = start_etcdpy(tmp_path / "srv")
    try:
        yield srv
    finally:
        srv.stop()


def put(url: str, key: str, value: str) -> int:
    body = {"key": base64.b64encode(key.encode()).decode(),
            "value": base64.b64encode(value.encode()).decode()}
    resp = httpx.post(f"{url}/v3/kv/put", json=body, timeout=TIMEOUT_S)
    resp.raise_for_status()
    return int(resp.json()["header"]["revision"])


def test_event_source_resumes_without_loss(etcdpy: Server, tmp_path: Path) -> None:
    port = int(etcdpy.url.rsplit(":", 1)[1])
    proxy = Proxy(port)
    reports = Reports()
    sse = f"http://127.0.0.1:{proxy.port}/watch/sse?key=page/&prefix=true&progress_interval=0"
    page = f"http://127.0.0.1:{reports.port}/?sse={quote(sse, safe='')}"
    assert CHROMIUM is not None, "chromium is not installed (.ci/run installs it with apt-get)"
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", page],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        created = reports.next("created")
        r1 = put(etcdpy.url, "page/a", "first")
        shown = reports.next("events")
        assert shown["id"] == str(r1) and shown["shown"] == [f"{r1} page/a=first"]

        proxy.refusing.set()  # hold the browser's reconnects back while we write
        proxy.cut()
        assert reports.next("error")["state"] in (0, 2)  # CONNECTING (it will retry) or CLOSED
        r2 = put(etcdpy.url, "page/b", "while away")
        put(etcdpy.url, "elsewhere", "not watched")
        r4 = put(etcdpy.url, "page/a", "second")
        proxy.refusing.clear()

        again = reports.next("created")  # the reconnect resumes right after the last id it saw
        assert again["id"] == str(r1) and int(created["id"]) < r1
        final = reports.next("events")
        if final["id"] != str(r4):
            final = reports.next("events")
        assert final["shown"] == [f"{r1} page/a=first", f"{r2} page/b=while away", f"{r4} page/a=second"]
        assert proxy.accepted >= 2
    finally:
        try:
            os.killpg(browser.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        browser.wait()
        proxy.close()
        reports.close()
