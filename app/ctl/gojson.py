"""Gateway JSON → the JSON etcdctl 3.4 prints with ``-w json``, plus Go's text helpers.

etcdctl marshals its Go response structs with encoding/json: int64/uint64 become JSON *numbers* (the
gateway writes strings), enums become their numbers, zero values are omitted just as the gateway
omits them, and ``<``, ``>``, ``&``, U+2028/9 in strings are escaped. Field order is the proto order in
both, so converting the gateway's objects in place gives byte-identical output.

Also here: Go's ``%v`` of a []string and go-humanize's ``Bytes``, which the simple, fields and table
printers need (Go's ``%q`` is `etcdpy.app.go_quote`, shared with the gateway's error messages).
"""

from __future__ import annotations

import json
import math
from typing import Any

# Every int64/uint64 field name of the messages etcdctl prints (the gateway writes them as strings).
INT_FIELDS = frozenset({
    "cluster_id", "member_id", "revision", "raft_term", "create_revision", "mod_revision", "version",
    "lease", "count", "deleted", "ID", "TTL", "grantedTTL", "dbSize", "dbSizeInUse", "leader",
    "raftIndex", "raftTerm", "raftAppliedIndex", "compact_revision", "memberID", "rev",
    "remaining_bytes", "watch_id",
})

ENUMS: dict[str, dict[str, int]] = {
    "type": {"PUT": 0, "DELETE": 1},
    "permType": {"READ": 0, "WRITE": 1, "READWRITE": 2},
    "alarm": {"NONE": 0, "NOSPACE": 1, "CORRUPT": 2},
}


def convert(value: Any, name: str = "") -> Any:
    """Recursively turn string-encoded integers into ints and enum names into numbers."""
    if isinstance(value, dict):
        return {k: convert(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [convert(v, name) for v in value]
    if isinstance(value, str):
        if name in ENUMS and value in ENUMS[name]:
            return ENUMS[name][value]
        if name in INT_FIELDS and value.lstrip("-").isdigit():
            return int(value)
    return value


def dumps(value: Any) -> str:
    """encoding/json.Marshal's bytes for an already-converted value (compact, HTML-escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def go_bool(flag: bool) -> str:
    return "true" if flag else "false"


def go_str_slice(items: list[str]) -> str:
    """fmt's %v of a []string: ``[a b c]``."""
    return "[" + " ".join(items) + "]"


def humanize_bytes(size: int) -> str:
    """github.com/dustin/go-humanize Bytes (SI units), used for db sizes."""
    if size < 10:
        return f"{size} B"
    sizes = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    exp = math.floor(math.log(size) / math.log(1000))
    val = math.floor(size / (1000 ** exp) * 10 + 0.5) / 10
    return f"{val:.0f} {sizes[exp]}" if val >= 10 else f"{val:.1f} {sizes[exp]}"


def go_duration(seconds: float) -> str:
    """time.Duration.String for the durations etcdctl prints (health ``took``, check perf)."""
    ns = int(round(seconds * 1e9))
    if ns == 0:
        return "0s"
    if ns < 1000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return _trim(f"{ns / 1e3:.3f}") + "µs"
    if ns < 1_000_000_000:
        return _trim(f"{ns / 1e6:.6f}") + "ms"
    return _trim(f"{ns / 1e9:.9f}") + "s"


def _trim(number: str) -> str:
    return number.rstrip("0").rstrip(".") if "." in number else number
