"""Watch scale benchmark (issue 6 goals; not a test).

Starts etcdpy, opens `--streams` watch streams with `--watchers` watchers each (one distinct key per
watcher), reports the server's RSS growth, then puts at `--rate` puts/s to random watched keys and
reports the put->event latency percentiles at the watchers.

    python bench/watch_scale_bench.py --streams 100 --watchers 100 --rate 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import start_etcdpy  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_stream(host: str, port: int, keys: list[bytes]) -> Conn:
    reader, writer = await asyncio.open_connection(host, port)
    body = b"".join(orjson.dumps({"create_request": {"key": b64(k)}}) for k in keys)
    writer.write(b"POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    created = 0
    while created < len(keys):
        size = int((await reader.readline()).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        created += chunk.count(b'"created":true')
    return reader, writer


async def read_events(reader: asyncio.StreamReader, latencies: list[float]) -> None:
    while True:
        size = int((await reader.readline()).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        now = time.monotonic_ns()
        result = orjson.loads(chunk)["result"]
        for ev in result.get("events", ()):
            sent = int(base64.b64decode(ev["kv"]["value"]))
            latencies.append((now - sent) / 1e6)


async def put_loop(host: str, port: int, keys: list[bytes], rate: float, seconds: float) -> int:
    conns = [await asyncio.open_connection(host, port) for _ in range(8)]
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for c in conns:
        pool.put_nowait(c)
    rng = random.Random(1)
    sent = 0

    async def one(key: bytes) -> None:
        reader, writer = await pool.get()
        body = orjson.dumps({"key": b64(key), "value": b64(str(time.monotonic_ns()).encode())})
        writer.write(b"POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        pool.put_nowait((reader, writer))

    t0 = time.monotonic()
    tasks = []
    i = 0
    while time.monotonic() - t0 < seconds:
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(rng.choice(keys))))
        i += 1
        sent += 1
    await asyncio.gather(*tasks)
    for _, w in conns:
        w.close()
    return sent


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="watch-bench-"))
    srv = start_etcdpy(tmp)
    host, port = "127.0.0.1", int(srv.url.rsplit(":", 1)[1])
    try:
        before = rss_kib(srv.proc.pid)
        all_keys: list[bytes] = []
        streams = []
        t0 = time.monotonic()
        for s in range(args.streams):
            keys = [b"bench/%05d/%05d" % (s, w) for w in range(args.watchers)]
            all_keys += keys
            streams.append(await open_stream(host, port, keys))
        setup_s = time.monotonic() - t0
        await asyncio.sleep(1.0)
        after = rss_kib(srv.proc.pid)
        total = args.streams * args.watchers
        print(f"{total} watchers on {args.streams} streams in {setup_s:.1f} s; server RSS "
              f"{before / 1024:.1f} MiB -> {after / 1024:.1f} MiB (+{(after - before) / 1024:.1f} MiB)")
        latencies: list[float] = []
        readers = [asyncio.create_task(read_events(r, latencies)) for r, _ in streams]
        sent = await put_loop(host, port, all_keys, args.rate, args.seconds)
        deadline = time.monotonic() + 5
        while len(latencies) < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for t in readers:
            t.cancel()
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

        print(f"{sent} puts at {args.rate:.0f}/s: {len(latencies)} events; latency ms p50 {pct(0.5):.1f} "
              f"p99 {pct(0.99):.1f} max {latencies[-1] if latencies else float('nan'):.1f}; "
              f"server RSS {rss_kib(srv.proc.pid) / 1024:.1f} MiB")
        for _, w in streams:
            w.close()
    finally:
        srv.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
