"""Run an etcdctl script with a given tool against a given server, and normalise what it printed.

Two tools: Debian's ``etcdctl`` (ETCDCTL_API=3, a subprocess per step) and ``etcdpyctl`` (called
in-process through ``etcdpy.app.ctl.cli.main`` with stdin/stdout/stderr swapped, which keeps the test fast;
streaming steps run it as the installed console script instead). What differs legitimately between
runs — cluster/member ids, lease ids, ports, durations, remaining TTLs — is captured from the run itself
and replaced by placeholders, so the outputs of the three runs can be compared byte for byte.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.ctl.script import Section, Step

ETCDCTL = "/usr/bin/etcdctl"
STREAM_TIMEOUT_S = 10.0


@dataclass
class Result:
    step: Step
    stdout: str
    stderr: str
    code: int

    def show(self) -> str:
        return f"$ {' '.join(self.step.args)}\n{self.stdout}[stderr]\n{self.stderr}[exit {self.code}]\n"


@dataclass
class Run:
    """One tool against one server: the variables captured so far and the id placeholders."""

    tool: str
    endpoint: str
    workdir: Path
    variables: dict[str, str] = field(default_factory=dict)
    replacements: list[tuple[str, str]] = field(default_factory=list)

    def learn_cluster(self) -> None:
        """Record this server's cluster/member ids and URLs so they normalise to placeholders."""
        # A member publishes its client URLs through Raft just after it starts serving (etcd does so
        # before it serves); wait for that, or the URLs would not be learned as placeholders.
        deadline = time.monotonic() + 10
        while True:
            resp = httpx.post(f"http://{self.endpoint}/v3/cluster/member/list", content=b"{}",
                              timeout=5).json()
            if all(m.get("clientURLs") for m in resp["members"]) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        header = resp["header"]
        self.learn("CLUSTER", int(header["cluster_id"]))
        self.learn("MEMBER", int(header["member_id"]))
        self.variables["member"] = f"{int(header['member_id']):x}"
        self.variables["endpoint"] = self.endpoint
        for member in resp["members"]:
            for url in member.get("peerURLs", []):
                self.replacements.append((url, "<PEER-URL>"))
            for url in member.get("clientURLs", []):
                self.replacements.append((url, "<CLIENT-URL>"))
        self.replacements.append((self.endpoint, "<ENDPOINT>"))

    def learn(self, name: str, value: int) -> None:
        # Longest forms first (decimal, zero-padded hex, bare hex); the width of an id's hex form varies
        # with its value, which normalise() evens out where etcdctl pads it.
        self.replacements.extend([(str(value), f"<{name}>"), (f"{value:016x}", f"<{name}>"),
                                  (f"{value:x}", f"<{name}>")])

    def expand(self, args: list[str]) -> list[str]:
        return [a.format(**self.variables) for a in args]

    def normalise(self, text: str, step: Step) -> str:
        lines = [ln for ln in text.splitlines(keepends=True) if not ln.startswith('{"level":')]
        if step.unordered:
            lines = [canonical_members(ln) for ln in lines]
        text = "".join(lines)
        for value, placeholder in sorted(self.replacements, key=lambda r: -len(r[0])):
            text = text.replace(value, placeholder)
        text = re.sub(r"(Member|cluster) +<", r"\1 <", text)  # "%16x" of an id shorter than 16 digits
        # Table column widths follow the (normalised) cell widths: compare the cells, not the padding.
        text = re.sub(r"(?m)^[|+].*$", lambda m: re.sub(r"[ -]{2,}", " ", m.group(0)), text)
        for pattern, repl in step.scrub:
            text = re.sub(pattern, repl, text)
        if step.unordered and not text.startswith("{"):
            text = "".join(sorted(text.splitlines(keepends=True)))
        return text

    def capture(self, step: Step, stdout: str) -> None:
        for name, pattern in step.capture.items():
            match = re.search(pattern, stdout)
            if match is None:
                raise AssertionError(f"{self.tool}: could not capture {name} from {stdout!r}")
            value = int(match.group(1), 10 if "\\d" in pattern else 16)
            self.variables[name] = f"{value:x}"
            self.learn(name.upper(), value)

    def run_step(self, step: Step) -> Result:
        args = self.expand(step.args)
        if step.stream_lines is not None:
            out, err, code = self._stream(args, step)
        elif self.tool == "etcdctl":
            out, err, code = self._subprocess(self.command(args), step.stdin)
        else:
            out, err, code = run_in_process(self.command(args)[1:], step.stdin, self.workdir)
        self.capture(step, out)
        return Result(step, self.normalise(out, step), self.normalise(err, step), code)

    def command(self, args: list[str]) -> list[str]:
        tool = [ETCDCTL] if self.tool == "etcdctl" else [str(Path(sys.executable).parent / "etcdpyctl")]
        return [*tool, f"--endpoints={self.endpoint}", *args]

    def _subprocess(self, argv: list[str], stdin: str) -> tuple[str, str, int]:
        proc = subprocess.run(argv, input=stdin.encode(), capture_output=True, cwd=self.workdir,
                              env=tool_env(), timeout=30)
        return proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"), proc.returncode

    def _stream(self, args: list[str], step: Step) -> tuple[str, str, int]:
        """Start a long-running command, read until it printed ``stream_lines`` lines, then stop it."""
        proc = subprocess.Popen(self.command(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=self.workdir, env=tool_env())
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        if step.stdin:
            proc.stdin.write(step.stdin.encode())
            proc.stdin.flush()
        buf = b""
        deadline = time.monotonic() + STREAM_TIMEOUT_S
        wanted = step.stream_lines or 0
        while buf.count(b"\n") < wanted and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
        got = buf.count(b"\n")
        if self.tool == "etcdctl" and got != wanted:
            # The script's line count is checked against the oracle, so a wrong count cannot hide output.
            raise AssertionError(f"etcdctl {' '.join(args)} printed {got} lines, "
                                 f"script expects {wanted}: {buf.decode(errors='replace')!r}")
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        # Stopped by a signal: its stderr and exit status are the signal's, not the tool's; not compared.
        return buf.decode("utf-8", "replace"), "", 0


def canonical_members(line: str) -> str:
    """A member list in an order that does not depend on the (random) member ids."""
    if line.startswith("{"):
        obj = json.loads(line)
        if "members" in obj:
            obj["members"].sort(key=lambda m: m.get("peerURLs", []))
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"
    if line.startswith('ETCD_INITIAL_CLUSTER="'):
        parts = line.strip()[len('ETCD_INITIAL_CLUSTER="'):-1].split(",")
        return 'ETCD_INITIAL_CLUSTER="' + ",".join(sorted(parts)) + '"\n'
    return line


def tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL")}
    env["ETCDCTL_API"] = "3"
    return env


def run_in_process(args: list[str], stdin: str, cwd: Path) -> tuple[str, str, int]:
    """etcdpyctl's main() with the standard streams swapped; returns (stdout, stderr, exit code)."""
    from etcdpy.app.ctl import cli

    saved = sys.stdin, sys.stdout, sys.stderr, os.getcwd()
    fake_out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    fake_err = io.StringIO()
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
    sys.stdout, sys.stderr = fake_out, fake_err
    code = 0
    try:
        os.chdir(cwd)
        cli.main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        fake_out.flush()
        sys.stdin, sys.stdout, sys.stderr = saved[0], saved[1], saved[2]
        os.chdir(saved[3])
    out = fake_out.buffer.getvalue().decode("utf-8", "replace")  # type: ignore[attr-defined]
    return out, fake_err.getvalue(), code


def run_sections(run: Run, sections: list[Section], on: Callable[[Section], bool]) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for section in sections:
        if not on(section):
            continue
        for idx, step in enumerate(section.steps):
            t0 = time.monotonic()
            results[f"{section.name}#{idx}"] = run.run_step(step)
            if os.environ.get("CTL_TIMING"):
                print(f"{run.tool} {section.name}#{idx} {' '.join(step.args)}: {time.monotonic() - t0:.2f}s")
    return results
