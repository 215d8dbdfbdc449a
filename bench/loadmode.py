"""`load` mode, for the memory goal: load N keys into a freshly started server, report its RSS, then
stop it and time restart-to-serving (spawn -> first successful range of a loaded key)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from etcdpy.app.peer.http_client import HttpConn
from etcdpy.bench import loader
from etcdpy.bench.goals import LOAD_GOAL_TEXT, LOAD_RESTART_RATIO, verdict_text
from etcdpy.bench.payloads import b64, key_bytes, value_bytes
from etcdpy.bench.progress import Bar
from etcdpy.bench.report import errors_text, fmt_bytes
from etcdpy.bench.servers import Cluster, ServerStartError


@dataclass
class LoadOutcome:
    server: str
    keys: int
    load_s: float = 0.0
    rss_after_load: int = 0
    disk_bytes: int = 0
    restart_s: float | None = None
    rss_after_restart: int = 0
    errors: dict[str, int] | None = None
    failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"server": self.server, "keys": self.keys, "load_s": round(self.load_s, 3),
                "keys_per_s": round(self.keys / self.load_s) if self.load_s else None,
                "rss_after_load": self.rss_after_load, "disk_bytes": self.disk_bytes,
                "restart_s": None if self.restart_s is None else round(self.restart_s, 3),
                "rss_after_restart": self.rss_after_restart, "errors": self.errors or {},
                "failure": self.failure}


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def _serving(endpoint: str, key_b64: str) -> bool:
    conn = HttpConn(endpoint)
    try:
        status, data = await asyncio.wait_for(conn.post("/v3/kv/range", orjson.dumps({"key": key_b64})), 2.0)
        return status == 200 and b'"kvs"' in data
    except (OSError, asyncio.IncompleteReadError, TimeoutError):
        return False
    finally:
        await conn.close()


def _wait_serving(c: Cluster, t0: float, key_b64: str, timeout: float = 120.0) -> float:
    ep = c.endpoints[0]
    while True:
        if asyncio.run(_serving(ep, key_b64)):
            return time.monotonic() - t0
        m = c.members[0]
        if m.popen is not None and m.popen.poll() is not None:
            raise ServerStartError(f"{c.label} exited during restart\n{c.log_tail(m)}")
        if time.monotonic() - t0 > timeout:
            raise ServerStartError(f"{c.label} not serving {timeout:.0f}s after restart")
        time.sleep(0.01)


def run_load(kind: str, keys: int, key_size: int, val_size: int, conns: int, seed: int,
             show_progress: bool = True, settle_s: float = 2.0) -> LoadOutcome:
    out = LoadOutcome(server=kind, keys=keys)
    with tempfile.TemporaryDirectory(prefix="etcdpy-bench-load-") as tmp:
        c = Cluster(kind, 1, Path(tmp))
        try:
            c.start()
            with Bar(f"load {kind}", keys, None, enabled=show_progress) as bar:
                done = 0
                t0 = time.monotonic()

                def tick(n: int) -> None:
                    nonlocal done
                    done += n
                    bar(done, time.monotonic() - t0)

                stats = asyncio.run(loader.load_keys(c.endpoints, keys, key_size, value_bytes(val_size, seed),
                                                     conns=conns, progress=tick))
            out.load_s = stats.duration_s
            out.errors = stats.errors
            time.sleep(settle_s)  # RSS after the burst, not mid-burst
            out.rss_after_load = c.rss_bytes()
            c.stop()
            out.disk_bytes = _disk(c.members[0].data_dir)
            probe = b64(key_bytes(keys - 1, key_size))
            t0 = c.spawn()
            out.restart_s = _wait_serving(c, t0, probe)
            out.rss_after_restart = c.rss_bytes()
        except (ServerStartError, RuntimeError, OSError) as e:
            out.failure = f"{type(e).__name__}: {e}"
        finally:
            c.stop()
    return out


def render(outs: list[LoadOutcome], val_size: int) -> str:
    lines = [f"== load: {outs[0].keys:,} keys x {val_size} B values =="]
    lines.append(f"  {'':<20}" + "".join(f"{o.server:>16}" for o in outs))

    def row(name: str, f: Any) -> None:
        lines.append(f"  {name:<20}" + "".join(f"{f(o):>16}" for o in outs))

    row("load time", lambda o: f"{o.load_s:.1f}s" if o.load_s else "-")
    row("keys/s", lambda o: f"{o.keys / o.load_s:,.0f}" if o.load_s else "-")
    row("RSS after load", lambda o: fmt_bytes(o.rss_after_load) if o.rss_after_load else "-")
    row("data dir on disk", lambda o: fmt_bytes(o.disk_bytes) if o.disk_bytes else "-")
    row("restart-to-serving", lambda o: f"{o.restart_s:.2f}s" if o.restart_s is not None else "-")
    row("RSS after restart", lambda o: fmt_bytes(o.rss_after_restart) if o.rss_after_restart else "-")
    for o in outs:
        if o.errors:
            lines.append(f"  load errors on {o.server}: {errors_text(o.errors)}")
        if o.failure:
            lines.append(f"  !! {o.server}: {o.failure.splitlines()[0]}")
    lines.append(f"  goal: {LOAD_GOAL_TEXT} -> {verdict_text(restart_goal(outs))}")
    return "\n".join(lines)


def restart_goal(outs: list[LoadOutcome]) -> bool | None:
    """etcdpy's restart-to-serving against etcd's from the same run; None without both."""
    times = {o.server: o.restart_s for o in outs if o.failure is None}
    etcd, py = times.get("etcd"), times.get("etcdpy")
    if etcd is None or py is None:
        return None
    return py <= LOAD_RESTART_RATIO * etcd


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
