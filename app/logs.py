"""Logging as etcd does it: `--logger`, `--log-outputs`, `--log-level`, and etcd's warnings.

Two formats, as etcd 3.4 has:

- `capnslog` (etcd 3.4's default): `2026-12-06 01:54:14.697531 W | wal: sync duration of 1.2s, expected
  less than 1s` — the date, one level letter, the package, the message.
- `zap`: one JSON object per line, `{"level","ts","caller","msg", …fields}` as etcd's zap logger writes it,
  plus `"name"`: the member name, on every line, so lines from several members can be merged.

A warning an operator must act on is logged with `event()`: etcd's zap message and fields for the JSON
format, and etcd's capnslog sentence for the text format, so both read as etcd's do.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import orjson

LOGGERS = ("zap", "capnslog")
# etcd's --log-level names -> Python levels (panic and fatal are both "stop the member" levels)
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
          "error": logging.ERROR, "panic": logging.CRITICAL, "fatal": logging.CRITICAL}
_ZAP_LEVEL = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
              logging.CRITICAL: "fatal"}
_CAPNS_LEVEL = {logging.DEBUG: "D", logging.INFO: "I", logging.WARNING: "W", logging.ERROR: "E",
                logging.CRITICAL: "C"}
# capnslog names the Go package; ours are named after the room that logs.
_CAPNS_PACKAGE = {"etcdpy.server": "etcdserver", "etcdpy.raft": "raft", "etcdpy.transport": "rafthttp",
                  "etcdpy.wal": "wal", "etcdpy": "etcdmain", "etcdpy.access": "access",
                  "uvicorn.error": "embed", "uvicorn": "embed"}


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String(): `1.234567s`, `120.5ms`, `850µs`, as etcd prints `took`."""
    if seconds >= 1:
        return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.6f}".rstrip("0").rstrip(".") + "ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3f}".rstrip("0").rstrip(".") + "µs"
    return f"{round(seconds * 1e9)}ns"


def event(logger: logging.Logger, level: int, msg: str, text: str, **fields: Any) -> None:
    """Log one of etcd's events: `msg` and `fields` as its zap logger writes them, `text` as capnslog.
    Field names use etcd's dashes (`expected-duration`): pass them as `expected_duration`."""
    if logger.isEnabledFor(level):
        zap_fields = {k.replace("_", "-"): v for k, v in fields.items()}
        logger.log(level, "%s", text, extra={"zap_msg": msg, "zap_fields": zap_fields}, stacklevel=2)


class ZapFormatter(logging.Formatter):
    """etcd's zap JSON lines, with the member name on each."""

    def __init__(self, member: str) -> None:
        super().__init__()
        self.member = member

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parent = record.pathname.replace("\\", "/").rsplit("/", 2)
        caller = "/".join(parent[-2:]) if len(parent) >= 2 else record.filename
        out: dict[str, Any] = {
            "level": _ZAP_LEVEL.get(record.levelno, "info"),
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "caller": f"{caller}:{record.lineno}",
            "msg": getattr(record, "zap_msg", None) or record.getMessage(),
            "name": self.member,
        }
        fields = getattr(record, "zap_fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class CapnslogFormatter(logging.Formatter):
    """etcd 3.4's default text lines: `2026-12-06 01:54:14.697531 I | etcdserver: message`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        micros = int((record.created % 1) * 1e6)
        package = _CAPNS_PACKAGE.get(record.name, record.name.rpartition(".")[2])
        level = _CAPNS_LEVEL.get(record.levelno, "I")
        line = f"{stamp}.{micros:06d} {level} | {package}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _stream(output: str) -> TextIO:
    if output in ("default", "stderr"):
        return sys.stderr
    if output == "stdout":
        return sys.stdout
    return open(output, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the process


def setup(kind: str, outputs: list[str], level: str, member: str) -> None:
    """Install the root handlers for `--logger`, `--log-outputs`, `--log-level` (validated by Config)."""
    formatter: logging.Formatter = ZapFormatter(member) if kind == "zap" else CapnslogFormatter()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    seen: set[str] = set()
    for output in outputs or ["default"]:
        key = "stderr" if output == "default" else output
        if key in seen:
            continue
        seen.add(key)
        handler = logging.StreamHandler(_stream(output))
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(LEVELS.get(level, logging.INFO))
    logging.getLogger("httpx").setLevel(logging.WARNING)
