"""The rest: ``version``, ``check perf``, and etcdpyctl's own ``export``/``import`` of a prefix as NDJSON.

Export writes one JSON object per key: ``{"key": …, "value": …}`` with text where the bytes are UTF-8,
otherwise ``key_b64``/``value_b64``; ``lease`` is kept when set. Import puts every line whose value
differs from what the server holds (in txns of at most 128 puts); ``--dry-run`` only prints the plan:
``+ key`` (new), ``~ key`` (changed), and with ``--prune`` ``- key`` for keys under the prefix that the
file does not have.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

import click

from etcdpy.app.ctl.client import JSON, CtlError, b64, unb64
from etcdpy.app.ctl.context import EXIT_INVALID_INPUT, bad_args, ctl
from etcdpy.app.ctl.printers import out, prefix_end

MAX_TXN_OPS = 128


@click.command("version")
def version() -> None:
    """Prints the version of etcdpyctl."""
    out("etcdpyctl version: 0.1.0\nAPI version: 3.4\n")


# --- check perf -----------------------------------------------------------------------------------
LOADS = {"s": (50, 150), "m": (200, 1000), "l": (500, 8000), "xl": (1000, 15000)}  # clients, writes/s


@click.group("check")
def check() -> None:
    """commands for checking properties of the etcd cluster."""


@check.command("perf")
@click.option("--load", default="s", help="The performance check's workload model (s, m, l, xl)")
@click.option("--prefix", default="/etcdctl-check-perf/", help="The prefix for writing the check keys")
@click.option("--auto-compact", is_flag=True, help="Compact storage with last revision after test")
@click.option("--auto-defrag", is_flag=True, help="Defragment storage after test")
@click.option("--duration", default=60, type=int, hidden=True, help="seconds to run (etcdctl: 60)")
def check_perf(load: str, prefix: str, auto_compact: bool, auto_defrag: bool, duration: int) -> None:
    """Check the performance of the etcd cluster."""
    if load not in LOADS:
        raise bad_args(f"unknown load option {load}")
    _, rate = LOADS[load]
    client = ctl().client()
    pfx = prefix.encode()
    existing = client.call("/v3/kv/range", {"key": b64(pfx), "range_end": b64(prefix_end(pfx)), "limit": "1"})
    if existing.get("kvs"):
        raise CtlError(f"prefix {prefix!r} has keys. Delete with 'etcdctl del --prefix {prefix}' first", 1)
    latencies: list[float] = []
    start = time.monotonic()
    seq = 0
    interval = 1.0 / rate
    while time.monotonic() - start < duration:
        t0 = time.monotonic()
        client.call("/v3/kv/put", {"key": b64(pfx + str(seq).encode()), "value": b64(b"x" * 256)})
        latencies.append(time.monotonic() - t0)
        seq += 1
        spare = interval - (time.monotonic() - t0)
        if spare > 0:
            time.sleep(spare)
        if sys.stderr.isatty():
            done = min(int(time.monotonic() - start), duration)
            sys.stderr.write(f"\r {done} / {duration} [{'=' * (done * 40 // max(duration, 1)):<40}]")
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    resp = client.call("/v3/kv/deleterange", {"key": b64(pfx), "range_end": b64(prefix_end(pfx))})
    if auto_compact:
        client.call("/v3/kv/compaction", {"revision": resp["header"]["revision"]})
    if auto_defrag:
        client.call("/v3/maintenance/defragment", {})
    elapsed = time.monotonic() - start
    throughput = len(latencies) / elapsed
    slowest = max(latencies) if latencies else 0.0
    stddev = statistics.pstdev(latencies) if latencies else 0.0
    ok = True
    if throughput < 0.9 * rate:
        out(f"FAIL: Throughput too low: {int(throughput)} writes/s\n")
        ok = False
    else:
        out(f"PASS: Throughput is {int(throughput)} writes/s\n")
    if slowest > 0.5:
        out(f"FAIL: Slowest request took too long: {slowest:.6f}s\n")
        ok = False
    else:
        out(f"PASS: Slowest request took {slowest:.6f}s\n")
    if stddev > 0.1:
        out(f"FAIL: Stddev too high: {stddev:.6f}s\n")
        ok = False
    else:
        out(f"PASS: Stddev is {stddev:.6f}s\n")
    if ok:
        out("PASS\n")
    else:
        out("FAIL\n")
        sys.exit(1)


# --- export / import ------------------------------------------------------------------------------
def _text_or_b64(record: dict[str, Any], name: str, data: bytes) -> None:
    try:
        record[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        record[f"{name}_b64"] = b64(data)


def _field(record: JSON, name: str, line_no: int) -> bytes:
    if name in record:
        return str(record[name]).encode("utf-8")
    if f"{name}_b64" in record:
        return unb64(record[f"{name}_b64"])
    if name == "value":
        return b""
    raise CtlError(f"line {line_no}: no {name!r} or {name + '_b64'!r}", EXIT_INVALID_INPUT)


def _range_all(prefix: bytes, rev: int = 0) -> list[JSON]:
    key, end = (prefix, prefix_end(prefix)) if prefix else (b"\x00", b"\x00")
    body: JSON = {"key": b64(key), "range_end": b64(end)}
    if rev:
        body["revision"] = str(rev)
    return list(ctl().client().call("/v3/kv/range", body).get("kvs", []))


@click.command("export")
@click.option("--rev", default=0, type=int, help="export the keys as of this revision")
@click.argument("prefix", default="")
def export_cmd(prefix: str, rev: int) -> None:
    """Writes the keys under a prefix as NDJSON (one {"key","value"} object per line)."""
    for kv in _range_all(prefix.encode("utf-8", "surrogateescape"), rev):
        record: dict[str, Any] = {}
        _text_or_b64(record, "key", unb64(kv.get("key")))
        _text_or_b64(record, "value", unb64(kv.get("value")))
        if kv.get("lease"):
            record["lease"] = f"{int(kv['lease']):x}"
        out(json.dumps(record, ensure_ascii=False) + "\n")


@click.command("import")
@click.option("--dry-run", is_flag=True, help="print what would change, change nothing")
@click.option("--prune", is_flag=True, help="also delete keys under PREFIX that the input does not have")
@click.option("--prefix", default="", help="the prefix the input covers (used by --prune)")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
def import_cmd(file: Any, dry_run: bool, prune: bool, prefix: str) -> None:
    """Puts the keys of an NDJSON export, changing only what differs."""
    wanted: dict[bytes, tuple[bytes, int]] = {}
    for line_no, line in enumerate(file, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise CtlError(f"line {line_no}: {exc}", EXIT_INVALID_INPUT) from None
        lease = int(str(record.get("lease", "0")), 16)
        wanted[_field(record, "key", line_no)] = (_field(record, "value", line_no), lease)
    current = {unb64(kv.get("key")): unb64(kv.get("value")) for kv in _range_all(prefix.encode())}
    if not prefix and wanted:
        # Without --prefix, compare against the keys the file names.
        current = {}
        for key in wanted:
            kvs = ctl().client().call("/v3/kv/range", {"key": b64(key)}).get("kvs", [])
            if kvs:
                current[key] = unb64(kvs[0].get("value"))
    ops: list[JSON] = []
    for key, (value, lease) in sorted(wanted.items()):
        if key in current and current[key] == value:
            continue
        mark = "~" if key in current else "+"
        out(f"{mark} {key.decode('utf-8', 'replace')}\n")
        put: JSON = {"key": b64(key), "value": b64(value)}
        if lease:
            put["lease"] = str(lease)
        ops.append({"request_put": put})
    if prune:
        for key in sorted(set(current) - set(wanted)):
            out(f"- {key.decode('utf-8', 'replace')}\n")
            ops.append({"request_delete_range": {"key": b64(key)}})
    if dry_run:
        return
    for start in range(0, len(ops), MAX_TXN_OPS):
        ctl().client().call("/v3/kv/txn", {"success": ops[start:start + MAX_TXN_OPS]})
