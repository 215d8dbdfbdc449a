"""Command line: `etcdpy-benchmark <workload> [options]`, `... compare [names...]`, `... load`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click
import orjson

from etcdpy.bench import compare as compare_mod
from etcdpy.bench import disk_probe, loadmode, report, workloads
from etcdpy.bench.servers import KINDS
from etcdpy.bench.workloads import Spec

F = Callable[..., Any]


def _common(f: F) -> F:
    opts = [
        click.option("--conns", "--clients", "conns", type=int, default=None,
                     help="concurrent HTTP/1.1 connections, one request in flight each [default: 64]; "
                          "watch: streams [default: 10]"),
        click.option("--total", type=int, default=None, help="stop after this many requests (watch: puts)"),
        click.option("--duration", type=float, default=None, help="seconds to run [default: 10]"),
        click.option("--key-space-size", "key_space", type=int, default=10_000, show_default=True),
        click.option("--key-size", type=int, default=8, show_default=True),
        click.option("--val-size", type=int, default=256, show_default=True),
        click.option("--rate", type=float, default=None,
                     help="watch: puts/s [100]; wrk workloads: approximate cap via per-connection delay"),
        click.option("--consistency", type=click.Choice(["l", "s"]), default="l", show_default=True,
                     help="range: linearizable or serializable"),
        click.option("--read-ratio", type=float, default=0.5, show_default=True,
                     help="txn-mixed: share of txns whose success branch reads"),
        click.option("--threads", type=int, default=2, show_default=True, help="wrk threads per endpoint"),
        click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
                     help="per-request timeout (s)"),
        click.option("--watchers", type=int, default=10, show_default=True,
                     help="watch: watchers per stream"),
        click.option("--spread", is_flag=True,
                     help="watch: each watcher on its own key, each put to a random watched key "
                          "(one event per put) instead of every watcher on one key"),
        click.option("--procs", type=int, default=1, show_default=True,
                     help="watch / lease-keepalive: client worker processes"),
        click.option("--no-prefill", is_flag=True, help="range/txn-mixed: do not write the key space first"),
        click.option("--seed", type=int, default=1, show_default=True),
        click.option("--json", "as_json", is_flag=True, help="machine-readable output, no progress bar"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _spec(workload: str, kw: dict[str, Any]) -> Spec:
    total, duration = kw["total"], kw["duration"]
    if total is not None and duration is not None:
        raise click.UsageError("give --total or --duration, not both")
    if total is None and duration is None:
        duration = 10.0
    try:
        conns = kw["conns"] or (10 if workload == "watch" else 64)
        return Spec(workload=workload, conns=conns, total=total, duration_s=duration,
                    key_space=kw["key_space"], key_size=kw["key_size"], val_size=kw["val_size"],
                    rate=kw["rate"], consistency=kw["consistency"], read_ratio=kw["read_ratio"],
                    threads=kw["threads"], timeout_s=kw["timeout_s"], seed=kw["seed"],
                    prefill=not kw["no_prefill"], watchers=kw["watchers"], procs=kw["procs"],
                    spread=kw["spread"])
    except ValueError as e:
        raise click.UsageError(str(e)) from e


def _emit_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def main() -> None:
    """Benchmark etcd v3 JSON gateways (real etcd 3.4 or etcdpy) over HTTP."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


def _workload_command(name: str, doc: str) -> None:
    @main.command(name=name, help=doc)
    @click.option("--endpoints", default="http://127.0.0.1:2379", show_default=True,
                  help="comma-separated client URLs; connections are spread over them")
    @_common
    def cmd(endpoints: str, **kw: Any) -> None:
        spec = _spec(name, kw)
        eps = [e.strip() for e in endpoints.split(",") if e.strip()]
        result = workloads.run(spec, eps, show_progress=not kw["as_json"])
        if kw["as_json"]:
            _emit_json(result.to_json())
        else:
            click.echo(report.render(result))


for _name, _doc in [
    ("put", "Puts of random keys from the key space (wrk)."),
    ("range", "Single-key ranges of random keys, --consistency l|s (wrk; the key space is prefilled)."),
    ("txn-put", "Txns with one put of a random key (wrk)."),
    ("txn-mixed", "Txns comparing a key's version, then a range or a put (wrk; prefilled)."),
    ("watch", "Watch fan-out: --conns streams x --watchers watchers on one key (or --spread: one key "
              "each); put->event latency at --rate puts/s, every event checked to arrive exactly once."),
    ("lease-keepalive", "Each connection renews its own lease in a loop (asyncio workers)."),
]:
    _workload_command(_name, _doc)


@main.command(name="compare")
@click.argument("names", nargs=-1)
@click.option("--rounds", type=int, default=3, show_default=True)
@click.option("--cluster", type=int, default=1, show_default=True, help="members per server (1 or 3)")
@click.option("--servers", default="etcd,etcdpy", show_default=True)
@_common
def compare_cmd(names: tuple[str, ...], rounds: int, cluster: int, servers: str, **kw: Any) -> None:
    """Start etcd 3.4 and etcdpy and run NAMES against both, alternating, --rounds times.

    NAMES are scenarios (put-64, range-64, range-s-64, put-latency-1, put-256; the default set = the issue's
    goals; also watch-10k = 100 streams x 100 watchers on distinct keys at 1,000 puts/s) or workload names
    (run with the given options).
    """
    kinds = tuple(s.strip() for s in servers.split(",") if s.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise click.UsageError(f"--servers takes {', '.join(KINDS)}")
    base = _spec("put", kw)
    try:
        compare_mod.resolve(list(names), base, kw["conns"] is not None)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    # The disk's sync latency, before and after: put figures move with it (bench/disk_probe.py).
    disk = [disk_probe.probe()]
    outcomes, start_errors, labels = compare_mod.run_compare(
        list(names), base, rounds=rounds, cluster=cluster, servers=kinds, quiet=kw["as_json"],
        explicit_conns=kw["conns"] is not None)
    disk.append(disk_probe.probe())
    if kw["as_json"]:
        _emit_json(compare_mod.to_json(outcomes, start_errors, labels, rounds, cluster, disk=disk))
    else:
        click.echo(compare_mod.render(outcomes, start_errors, labels, rounds, cluster, disk=disk))


@main.command(name="disk")
@click.option("--dir", "directory", default=None, help="where to write (default: the temporary directory)")
@click.option("--syncs", type=int, default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def disk_cmd(directory: str | None, syncs: int, as_json: bool) -> None:
    """How long the disk takes to make a small append durable (what every put waits for)."""
    result = disk_probe.probe(directory, syncs)
    if as_json:
        _emit_json(result.to_json())
    else:
        click.echo(result.text())


@main.command(name="load")
@click.option("--keys", type=int, default=1_000_000, show_default=True)
@click.option("--key-size", type=int, default=16, show_default=True)
@click.option("--val-size", type=int, default=100, show_default=True)
@click.option("--conns", type=int, default=16, show_default=True, help="concurrent txn requests")
@click.option("--servers", default="etcd,etcdpy", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def load_cmd(keys: int, key_size: int, val_size: int, conns: int, servers: str, seed: int,
             as_json: bool) -> None:
    """Load KEYS keys (txns of 128 puts) into a fresh server; report RSS and restart-to-serving time."""
    kinds = [s.strip() for s in servers.split(",") if s.strip()]
    if not kinds or any(k not in KINDS for k in kinds):
        raise click.UsageError(f"--servers takes {', '.join(KINDS)}")
    outs = []
    for kind in kinds:
        if not as_json:
            loadmode.log(f"loading {keys:,} keys into a fresh {kind} ...")
        outs.append(loadmode.run_load(kind, keys, key_size, val_size, conns, seed, show_progress=not as_json))
    if as_json:
        _emit_json({"val_size": val_size, "key_size": key_size, "results": [o.to_json() for o in outs]})
    else:
        click.echo(loadmode.render(outs, val_size))


if __name__ == "__main__":
    main()
