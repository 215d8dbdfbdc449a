"""Key-value commands: get, put, del, txn, compaction, watch.

Each maps to one gateway RPC (watch to the /v3/watch stream) and prints through the ``-w`` printer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

import click

from etcdpy.app.ctl.client import JSON, CtlError, GatewayError, b64, unb64
from etcdpy.app.ctl.context import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, bad_args, ctl
from etcdpy.app.ctl.printers import Printer, out
from etcdpy.app.ctl.requests import arg_bytes, del_request, get_request, put_request, range_end
from etcdpy.app.ctl.txn_parse import parse_txn

ARGS = click.argument("args", nargs=-1)


def _get_options(func: Any) -> Any:
    for opt in reversed([
        click.option("--consistency", default="l", help="Linearizable(l) or Serializable(s)"),
        click.option("--order", default="", help="Order of results; ASCEND or DESCEND"),
        click.option("--sort-by", default="", help="Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION"),
        click.option("--limit", default=0, type=int, help="Maximum number of results"),
        click.option("--prefix", is_flag=True, help="Get keys with matching prefix"),
        click.option("--from-key", is_flag=True, help="Get keys that are greater than or equal to the key"),
        click.option("--rev", default=0, type=int, help="Specify the kv revision"),
        click.option("--keys-only", is_flag=True, help="Get only the keys"),
        click.option("--print-value-only", is_flag=True, help="Only write values (simple format)"),
    ]):
        func = opt(func)
    return func


def _put_options(func: Any) -> Any:
    for opt in reversed([
        click.option("--lease", default="0", help="lease ID (in hexadecimal) to attach to the key"),
        click.option("--prev-kv", is_flag=True, help="return the previous key-value pair"),
        click.option("--ignore-value", is_flag=True, help="updates the key using its current value"),
        click.option("--ignore-lease", is_flag=True, help="updates the key using its current lease"),
    ]):
        func = opt(func)
    return func


def _del_options(func: Any) -> Any:
    for opt in reversed([
        click.option("--prefix", is_flag=True, help="delete keys with matching prefix"),
        click.option("--prev-kv", is_flag=True, help="return deleted key-value pairs"),
        click.option("--from-key", is_flag=True, help="delete keys >= the given key"),
    ]):
        func = opt(func)
    return func


@click.command("get", context_settings={"ignore_unknown_options": False})
@_get_options
@ARGS
def get(args: tuple[str, ...], **p: Any) -> None:
    """Gets the key or a range of keys."""
    req = get_request(args, p)
    printer = ctl().printer(value_only=p["print_value_only"])
    printer.get(ctl().client().call("/v3/kv/range", req))


@click.command("put")
@_put_options
@ARGS
def put(args: tuple[str, ...], **p: Any) -> None:
    """Puts the given key into the store."""
    req = put_request(args, p)
    ctl().printer().put(ctl().client().call("/v3/kv/put", req))


@click.command("del")
@_del_options
@ARGS
def delete(args: tuple[str, ...], **p: Any) -> None:
    """Removes the specified key or range of keys [key, range_end)."""
    req = del_request(args, p)
    ctl().printer().delete(ctl().client().call("/v3/kv/deleterange", req))


def _txn_op(args: list[str]) -> JSON:
    """One success/failure line: parsed by the very get/put/del commands above."""
    commands = {"get": (get, get_request, "request_range"), "put": (put, put_request, "request_put"),
                "del": (delete, del_request, "request_delete_range")}
    if args[0] not in commands:
        raise CtlError(f"invalid txn request: {' '.join(args)}", EXIT_INVALID_INPUT)
    cmd, build, field = commands[args[0]]
    try:
        sub = cmd.make_context(args[0], list(args[1:]), resilient_parsing=False)
    except click.UsageError:
        raise CtlError(f"invalid txn request: {' '.join(args)}", EXIT_INVALID_INPUT) from None
    params = dict(sub.params)
    op_args = params.pop("args")
    return {field: build(op_args, params)}


@click.command("txn")
@click.option("-i", "--interactive", is_flag=True, help="Input transaction in interactive mode")
@ARGS
def txn(args: tuple[str, ...], interactive: bool) -> None:
    """Txn processes all the requests in one transaction."""
    if args:
        raise bad_args("txn command does not accept argument")

    def prompt(text: str) -> None:
        out(text)
        sys.stdout.flush()

    body = parse_txn(sys.stdin, interactive, _txn_op, prompt)
    printer = ctl().printer()
    printer.txn(ctl().client().call("/v3/kv/txn", body))


@click.command("compaction")
@click.option("--physical", is_flag=True, help="wait for the compaction to physically remove keys")
@ARGS
def compaction(args: tuple[str, ...], physical: bool) -> None:
    """Compacts the event history in etcd."""
    if len(args) != 1:
        raise bad_args("compaction command needs 1 argument")
    try:
        rev = int(args[0])
    except ValueError:
        raise CtlError(f'strconv.ParseInt: parsing "{args[0]}": invalid syntax', 1) from None
    body: JSON = {"revision": str(rev)}
    if physical:
        body["physical"] = True
    resp = ctl().client().call("/v3/kv/compaction", body)
    ctl().printer().compaction(rev, resp)


def _is_progress(resp: JSON) -> bool:
    return (not resp.get("events") and not resp.get("canceled") and not resp.get("created")
            and not resp.get("compact_revision") and bool((resp.get("header") or {}).get("revision")))


class _Watcher:
    """Runs one watch stream and prints what clientv3's WatchChan would deliver."""

    def __init__(self, printer: Printer, lock: threading.Lock, exec_cmd: list[str]) -> None:
        self.client = ctl().client()  # here, on the command's thread: click's context is thread-local
        self.printer = printer
        self.lock = lock
        self.exec_cmd = exec_cmd

    def run(self, create: JSON) -> None:
        client = self.client
        target = int(create.get("start_revision", "0"))
        catchup = _CatchUp(target) if target and sys.stderr.isatty() else None
        for resp in client.stream("/v3/watch", {"create_request": create}, read_timeout=None):
            if resp.get("created") and not resp.get("canceled"):
                if catchup:
                    catchup.start(int((resp.get("header") or {}).get("revision", 0)))
                continue  # clientv3 swallows the creation notice
            with self.lock:
                if resp.get("canceled"):
                    reason = resp.get("cancel_reason") or (
                        "etcdserver: mvcc: required revision has been compacted"
                        if resp.get("compact_revision") else "")
                    sys.stderr.write(f"watch was canceled ({reason})\n")
                if _is_progress(resp):
                    out(f"progress notify: {resp['header']['revision']}\n")
                self.printer.watch(resp)
                sys.stdout.flush()
                if catchup:
                    catchup.update(resp)
                self._exec(resp)
            if resp.get("canceled"):
                return

    def _exec(self, resp: JSON) -> None:
        if not self.exec_cmd:
            return
        for ev in resp.get("events", []):
            env = dict(os.environ)
            kv = ev.get("kv", {})
            env.update({"ETCD_WATCH_REVISION": str((resp.get("header") or {}).get("revision", 0)),
                        "ETCD_WATCH_EVENT_TYPE": ev.get("type", "PUT"),
                        "ETCD_WATCH_KEY": unb64(kv.get("key")).decode("utf-8", "replace"),
                        "ETCD_WATCH_VALUE": unb64(kv.get("value")).decode("utf-8", "replace")})
            subprocess.run(self.exec_cmd, env=env, check=False)


class _CatchUp:
    """A one-line progress display on a terminal while a watch replays history up to "now"."""

    def __init__(self, start: int) -> None:
        self.first = start
        self.head = 0
        self.done = False

    def start(self, head: int) -> None:
        self.head = head
        self._draw(self.first)

    def update(self, resp: JSON) -> None:
        if self.done or not self.head:
            return
        revs = [int(e.get("kv", {}).get("mod_revision", 0)) for e in resp.get("events", [])]
        seen = max(revs) if revs else self.head
        self._draw(seen)
        if seen >= self.head:
            self.done = True
            sys.stderr.write("\n")

    def _draw(self, rev: int) -> None:
        span = max(self.head - self.first, 1)
        frac = min(max(rev - self.first, 0) / span, 1.0)
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\rcatching up [{bar:<30}] rev {rev}/{self.head}")
        sys.stderr.flush()


def _create_request(args: list[str], prefix: bool, rev: int, prev_kv: bool, progress: bool) -> JSON:
    key = arg_bytes(args[0]) if args else b""
    end = arg_bytes(args[1]) if len(args) > 1 else None
    if prefix and end is not None:
        raise bad_args("unexpected range_end with --prefix")
    key, pend = range_end(key, prefix, False)
    req: JSON = {"key": b64(key)}
    if pend is not None or end is not None:
        req["range_end"] = b64(pend if pend is not None else end or b"")
    if rev:
        req["start_revision"] = str(rev)
    if progress:
        req["progress_notify"] = True
    if prev_kv:
        req["prev_kv"] = True
    return req


@click.command("watch")
@click.option("-i", "--interactive", is_flag=True, help="Interactive mode")
@click.option("--prefix", is_flag=True, help="Watch on a prefix if prefix is set")
@click.option("--rev", default=0, type=int, help="Revision to start watching")
@click.option("--prev-kv", is_flag=True, help="get the previous key-value pair before the event happens")
@click.option("--progress-notify", is_flag=True, help="get periodic watch progress notification from server")
@ARGS
def watch(args: tuple[str, ...], interactive: bool, prefix: bool, rev: int, prev_kv: bool,
          progress_notify: bool) -> None:
    """Watches events stream on keys or prefixes."""
    words = list(args)
    exec_cmd: list[str] = []
    raw = sys.argv
    if "--" in raw:
        # click swallows "--"; the words after it (in the real argv) are the command to exec.
        exec_cmd = raw[raw.index("--") + 1:]
        words = [w for w in words if w not in exec_cmd] if exec_cmd else words
    printer = ctl().printer()
    lock = threading.Lock()
    if not interactive:
        if not 1 <= len(words) <= 2:
            raise bad_args("bad number of arguments")
        create = _create_request(words, prefix, rev, prev_kv, progress_notify)
        _run_watch(_Watcher(printer, lock, exec_cmd), create)
        raise CtlError("watch is canceled by the server", EXIT_INTERRUPTED)
    _interactive(printer, lock)


def _run_watch(watcher: _Watcher, create: JSON) -> None:
    try:
        watcher.run(create)
    except GatewayError as exc:
        raise CtlError(exc.message, 1) from exc


def _interactive(printer: Printer, lock: threading.Lock) -> None:
    # readline, not iteration: iterating a pipe reads ahead and would sit on typed lines.
    for line in iter(sys.stdin.readline, ""):
        words = line.split()
        if not words:
            continue
        if words[0] != "watch":
            sys.stderr.write(f"Invalid command: {line.strip()} (only support watch)\n")
            continue
        try:
            sub = watch.make_context("watch", words[1:])
            p = dict(sub.params)
            create = _create_request(list(p["args"]), p["prefix"], p["rev"], p["prev_kv"],
                                     p["progress_notify"])
        except (click.UsageError, CtlError) as exc:
            sys.stderr.write(f"Invalid command {line.strip()} ({exc})\n")
            continue
        thread = threading.Thread(target=_Watcher(printer, lock, []).run, args=(create,), daemon=True)
        thread.start()
    # etcdctl stops reading (and exits, dropping its watches) when its input ends.
    with lock:
        sys.stdout.flush()
        raise CtlError("Error reading watch request line: EOF", EXIT_INVALID_INPUT)
