"""`etcdpy snapshot save|status|restore`: the command-line face of `backup.py`, with etcdctl's and
etcdutl's flags, outputs and exit codes (1 on any error, with `Error: …` on stderr)."""

from __future__ import annotations

import argparse
import sys

import orjson
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from etcdpy.app import backup
from etcdpy.app.backup import SnapshotError, SnapshotStatus
from etcdpy.app.ctl.gojson import humanize_bytes
from etcdpy.app.ctl.printers import render_table

USAGE = "etcdpy snapshot {save FILE --endpoints URL | status FILE [-w simple|table|json] | restore FILE ...}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="etcdpy snapshot", usage=USAGE)
    sub = parser.add_subparsers(dest="command", required=True)
    save = sub.add_parser("save", help="Stream a member's database into a file")
    save.add_argument("file")
    save.add_argument("--endpoints", default="http://127.0.0.1:2379",
                      help="the one member to ask (etcdctl refuses several)")
    save.add_argument("--command-timeout", type=float, default=30.0, help="seconds without progress")
    status = sub.add_parser("status", help="Hash, revision, keys and size of a snapshot file")
    status.add_argument("file")
    status.add_argument("-w", "--write-out", default="simple", choices=("simple", "table", "json"))
    restore = sub.add_parser("restore", help="Write a new member data directory from a snapshot file")
    restore.add_argument("file")
    restore.add_argument("--name", default="default")
    restore.add_argument("--initial-cluster", default="")
    restore.add_argument("--initial-cluster-token", default="etcd-cluster")
    restore.add_argument("--initial-advertise-peer-urls", default="http://localhost:2380")
    restore.add_argument("--data-dir", default="")
    restore.add_argument("--skip-hash-check", action="store_true")
    return parser


def format_status(st: SnapshotStatus, write_out: str) -> str:
    row = [f"{st.hash:x}", str(st.revision), str(st.total_key), humanize_bytes(st.total_size)]
    if write_out == "json":
        return orjson.dumps(st.to_json()).decode()
    if write_out == "simple":
        return ", ".join(row)
    # etcdctl's tablewriter table, the renderer etcdpyctl prints with (an odd gap around a header puts
    # its extra space on the right, as etcdctl does for a 7-digit hash).
    return render_table(["hash", "revision", "total keys", "total size"], [row]).rstrip("\n")


def _save(args: argparse.Namespace) -> None:
    endpoints = [e for e in args.endpoints.split(",") if e]
    if len(endpoints) != 1:
        raise SnapshotError(f"snapshot must be requested to one selected node, not multiple {endpoints}")
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn())
    # The bar is drawn on a terminal only, so scripted use prints just etcdctl's line.
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("snapshot", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        backup.save(endpoints[0], args.file, progress, timeout=args.command_timeout)
    print(f"Snapshot saved at {args.file}")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "save":
            _save(args)
        elif args.command == "status":
            print(format_status(backup.status(args.file), args.write_out))
        else:
            data_dir = backup.restore(
                args.file, name=args.name, initial_cluster=args.initial_cluster,
                initial_advertise_peer_urls=[u for u in args.initial_advertise_peer_urls.split(",") if u],
                initial_cluster_token=args.initial_cluster_token, data_dir=args.data_dir,
                skip_hash_check=args.skip_hash_check)
            print(f"Restored snapshot {args.file} into {data_dir}")
    except SnapshotError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0
