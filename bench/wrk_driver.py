"""Runs wrk — one process per endpoint — and turns its output into a Result.

wrk's main thread sleeps for the whole -d duration even after every worker thread stopped itself, so
in --total mode we watch the workers' "s" lines on stderr and end wrk early with SIGINT (wrk treats
it as a normal stop and still runs done()).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import orjson

from etcdpy.bench.lua_script import RESULT_MARKER, LuaParams, render
from etcdpy.bench.result import Result
from etcdpy.bench.servers import process_cpu_seconds
from etcdpy.bench.stats import Latency

WRK = shutil.which("wrk") or "/usr/bin/wrk"

ProgressFn = Callable[[int, float], None]  # (responses so far, seconds elapsed)


class WrkError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkPlan:
    endpoints: list[str]
    conns: int
    threads: int
    duration_s: float | None  # None with total
    total: int | None
    timeout_s: float
    lua: LuaParams
    max_duration_s: float = 600.0  # the cap for --total runs


def _split(n: int, parts: int) -> list[int]:
    base, rem = divmod(n, parts)
    return [base + (1 if i < rem else 0) for i in range(parts)]


class _Proc:
    def __init__(self, argv: list[str]) -> None:
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.responses = 0
        self.stopped_threads = 0
        self.stderr_other: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            if line.startswith("p "):
                self.responses += int(line[2:])
            elif line.startswith("s"):
                self.stopped_threads += 1
            elif line.strip():
                self.stderr_other.append(line.rstrip())

    def finish(self) -> str:
        out, _ = self.popen.communicate()
        self._reader.join(timeout=5)
        return out


def run(plan: WrkPlan, progress: ProgressFn | None = None, workload: str | None = None) -> Result:
    n = len(plan.endpoints)
    if plan.conns < n:
        raise WrkError(f"--conns {plan.conns} is less than the number of endpoints {n}")
    conns = _split(plan.conns, n)
    threads = [max(1, min(plan.threads, c)) for c in conns]
    procs: list[_Proc] = []
    scripts: list[str] = []
    duration = plan.duration_s if plan.total is None else plan.max_duration_s
    try:
        for ep, c, t in zip(plan.endpoints, conns, threads, strict=True):
            quota = 0
            if plan.total is not None:
                share = plan.total * c / plan.conns
                quota = max(1, math.ceil(share / t))
            lua = render(replace(plan.lua, quota_per_thread=quota))
            fd, path = tempfile.mkstemp(prefix="etcdpy-bench-", suffix=".lua")
            with os.fdopen(fd, "w") as f:
                f.write(lua)
            scripts.append(path)
            argv = [WRK, f"-t{t}", f"-c{c}", f"-d{max(1, math.ceil(duration or 1))}s",
                    f"--timeout={plan.timeout_s:g}s", "-s", path, ep.rstrip("/")]
            procs.append(_Proc(argv))
        start = time.monotonic()
        interrupted = False
        client_cpu = [0.0] * len(procs)
        while any(p.popen.poll() is None for p in procs):
            time.sleep(0.1)
            for i, p in enumerate(procs):  # sampled while alive: /proc/<pid> goes away at exit
                if p.popen.poll() is None:
                    client_cpu[i] = max(client_cpu[i], process_cpu_seconds(p.popen.pid))  # wrk forks nothing
            if progress is not None:
                progress(sum(p.responses for p in procs), time.monotonic() - start)
            if plan.total is not None and not interrupted:
                if all(p.stopped_threads >= t for p, t in zip(procs, threads, strict=True)):
                    for p in procs:
                        if p.popen.poll() is None:
                            p.popen.send_signal(signal.SIGINT)
                    interrupted = True
        outputs = [p.finish() for p in procs]
    finally:
        for p in procs:
            if p.popen.poll() is None:
                p.popen.kill()
                p.popen.wait()
        for s in scripts:
            os.unlink(s)
    result = _merge(plan, outputs, [p.stderr_other for p in procs], workload or plan.lua.workload)
    # wrk's own CPU time shows whether the client could have been the bottleneck
    result.extra["client_cpu_s"] = round(sum(client_cpu), 2)
    return result


def _merge(plan: WrkPlan, outputs: list[str], stderrs: list[list[str]], workload: str) -> Result:
    result = Result(workload=workload, endpoints=plan.endpoints, conns=plan.conns, duration_s=0.0, requests=0)
    for out, err in zip(outputs, stderrs, strict=True):
        line = next((ln for ln in out.splitlines() if ln.startswith(RESULT_MARKER)), None)
        if line is None:
            raise WrkError("wrk produced no result: " + " | ".join(err[-5:] + out.splitlines()[-5:]))
        data = orjson.loads(line[len(RESULT_MARKER):])
        result.requests += int(data["requests"])
        # Processes run concurrently: the run lasted as long as the slowest one.
        result.duration_s = max(result.duration_s, data["duration_us"] / 1e6)
        for k, v in data["errors"].items():
            result.errors[k] = result.errors.get(k, 0) + int(v)
        if data["percentiles"]:
            points = [(float(p), float(v)) for p, v in data["percentiles"]]
            part = Latency.from_quantiles(points, int(data["requests"]), float(data["mean_us"]))
            result.latency.merge(part)
    return result
