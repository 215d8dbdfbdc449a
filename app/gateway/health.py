"""The member's operational endpoints, outside the v3 API: `/health` (etcd 3.4's answer, with 3.5's
`?serializable=true` and `?exclude=`), `/livez` and `/readyz` (etcd 3.5), `/version`, `/debug/vars`,
`/metrics`, and the small app served on `--listen-metrics-urls` (`/metrics` and `/health`, as etcd).

`check()` is the one health decision (alarms, leader, a read through the API); every endpoint words its
answer from it. Alarms come from `server.alarms` when the server has them (the maintenance service).
The client listener's routes for them are in health_routes.py, with the FastAPI app; this module needs
no FastAPI, so the metrics listener does not load it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import Receive, Scope, Send

from etcdpy.app.gateway.dispatch import CORS, respond
from etcdpy.app.logs import event
from etcdpy.app.server.metrics import CONTENT_TYPE, HEALTH
from etcdpy.raft import ProgressStateType, StateType

log = logging.getLogger("etcdpy.server")

HEALTH_READ_TIMEOUT_S = 1.0  # etcd 3.4 gives its health read one second
ALARM_NAMES = {1: "NOSPACE", 2: "CORRUPT"}


@dataclass(frozen=True)
class Health:
    healthy: bool
    reason: str = ""


async def check(server: Any, *, serializable: bool, exclude: frozenset[str] = frozenset(),
                need_leader: bool = True, endpoint: str = "/health") -> Health:
    """etcd's checkAlarms, checkLeader and checkAPI, in that order; the first failure is the answer."""
    alarms = getattr(server, "alarms", None)  # the maintenance service's alarm store, when present
    for alarm in getattr(alarms, "active", ()) if alarms is not None else ():
        name = ALARM_NAMES.get(getattr(alarm, "alarm", 0), "UNKNOWN")
        if name in exclude:
            continue
        event(log, logging.WARNING, "serving /health false due to an alarm",
              f"{endpoint} error due to an alarm {alarm}", alarm=str(alarm))
        return Health(False, f"ALARM {name}")
    if need_leader and not serializable and not server.node.leader:
        event(log, logging.WARNING, "serving /health false; no leader",
              f"{endpoint} error; no leader (status code 503)")
        return Health(False, "RAFT NO LEADER")
    if not serializable:
        # A linearizable read proves the member can reach a quorum (etcd 3.4 uses a QGET, 3.5 a Range).
        try:
            await asyncio.wait_for(server.linearizable_barrier(), HEALTH_READ_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any failure of the read is the answer
            message = str(exc) or "context deadline exceeded"
            event(log, logging.WARNING, "serving /health false; Range fails",
                  f"{endpoint} error; QGET failed {message} (status code 503)", error=message)
            return Health(False, f"RANGE ERROR:{message}")
    return Health(True)


def query_flags(query_string: bytes) -> tuple[bool, frozenset[str]]:
    """`?serializable=true` and the `?exclude=` alarm names of a health request."""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    serializable = next((v for k, v in pairs if k == "serializable"), None) == "true"
    exclude = frozenset(v for k, v in pairs if k == "exclude" and v)
    return serializable, exclude


_TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")


def health_answer(health: Health, *, with_reason: bool, cors: bool = True
                  ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """etcd's health answer (status, headers, body): 200 with the JSON, or Go's http.Error (503, a
    newline, nosniff). The metrics listener answers without the client listener's CORS headers, as
    etcd's does."""
    headers = [*CORS] if cors else []
    if health.healthy:
        HEALTH.success += 1
    else:
        HEALTH.failures += 1
    body: dict[str, str] = {"health": "true" if health.healthy else "false"}
    if with_reason:  # etcd 3.5's Health has a reason; 3.4's /health has not
        body["reason"] = health.reason
    text = orjson.dumps(body)
    if health.healthy:
        return 200, [*headers, _TEXT_PLAIN], text
    return 503, [*headers, _TEXT_PLAIN, (b"x-content-type-options", b"nosniff")], text + b"\n"


def version_body(server: Any) -> dict[str, str]:
    return {"etcdserver": server.version, "etcdcluster": server.cluster_version.text()}


# ------------------------------------------------------------------ /debug/vars

_RAFT_STATES = {StateType.FOLLOWER: "StateFollower", StateType.CANDIDATE: "StateCandidate",
                StateType.LEADER: "StateLeader", StateType.PRE_CANDIDATE: "StatePreCandidate"}
_PROGRESS_STATES = {ProgressStateType.PROBE: "StateProbe", ProgressStateType.REPLICATE: "StateReplicate",
                    ProgressStateType.SNAPSHOT: "StateSnapshot"}


def raft_status(server: Any) -> dict[str, Any]:
    """etcd's `raft.status` expvar: raft.Status as its MarshalJSON writes it (ids in hex)."""
    st = server.node.raw.status()
    return {
        "id": f"{st.id:x}",
        "term": st.hard_state.term,
        "vote": f"{st.hard_state.vote:x}",
        "commit": st.hard_state.commit,
        "lead": f"{st.soft_state.lead:x}",
        "raftState": _RAFT_STATES.get(st.soft_state.raft_state, "StateFollower"),
        "applied": st.applied,
        "progress": {f"{pid:x}": {"match": p.match, "next": p.next, "state": _PROGRESS_STATES[p.state]}
                     for pid, p in sorted(st.progress.items())},
        "leadtransferee": f"{st.lead_transferee:x}",
    }


def _memstats() -> dict[str, int]:
    """The process's memory, under the Go runtime names that have a Python counterpart."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        with open("/proc/self/statm") as f:
            pages = [int(x) for x in f.read().split()[:2]]
        sys_bytes, rss = (n * os.sysconf("SC_PAGE_SIZE") for n in pages)
    except OSError:
        sys_bytes = rss = usage.ru_maxrss * 1024
    return {"Alloc": rss, "Sys": sys_bytes, "NumGC": sum(s["collections"] for s in gc.get_stats())}


def debug_vars(server: Any) -> bytes:
    """Go's expvar page: one `"name": value` line per variable, sorted, in braces."""
    variables = {
        "cmdline": [sys.executable, *sys.argv],
        "file_descriptor_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "memstats": _memstats(),
        "raft.status": raft_status(server),
    }
    lines = [f'"{name}": {orjson.dumps(value).decode()}' for name, value in sorted(variables.items())]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


class MetricsApp:
    """The ASGI app on --listen-metrics-urls: /metrics and /health only, as etcd serves there."""

    def __init__(self, server: Any) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/metrics":
            await respond(send, 200, self.server.metrics.render(), [(b"content-type", CONTENT_TYPE.encode())])
        elif path == "/health":
            if scope["method"] != "GET":
                await respond(send, 405, b"Method Not Allowed\n", [
                    (b"allow", b"GET"), (b"content-type", b"text/plain; charset=utf-8"),
                    (b"x-content-type-options", b"nosniff")])
                return
            serializable, exclude = query_flags(scope.get("query_string", b""))
            result = await check(self.server, serializable=serializable, exclude=exclude)
            status, headers, body = health_answer(result, with_reason=False, cors=False)
            await respond(send, status, body, headers)
        else:
            await respond(send, 404, b"404 page not found\n", [
                (b"content-type", b"text/plain; charset=utf-8"), (b"x-content-type-options", b"nosniff")])
