"""Cluster and maintenance commands: member, endpoint, move-leader, alarm, defrag, snapshot.

Per-endpoint commands (endpoint status/health/hashkv, defrag) ask each endpoint of ``--endpoints``
itself (or, with ``--cluster``, every client URL of every member), like etcdctl does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import click

from etcdpy.app.ctl.client import (
    JSON,
    ClientConfig,
    CtlError,
    GatewayClient,
    GatewayError,
    Unreachable,
    base_url,
)
from etcdpy.app.ctl.context import bad_args, ctl, parse_hex_id
from etcdpy.app.ctl.gojson import go_duration
from etcdpy.app.ctl.printers import DBStatus, EpHash, EpHealth, EpStatus, Printer, out
from etcdpy.app.go_quote import go_quote

ARGS = click.argument("args", nargs=-1)
HEALTH_RETRY_S = 0.1


# --- member -------------------------------------------------------------------------------------
@click.group("member")
def member() -> None:
    """Membership related commands."""


@member.command("list")
@ARGS
def member_list(args: tuple[str, ...]) -> None:
    """Lists all members in the cluster."""
    ctl().printer().member_list(ctl().client().call("/v3/cluster/member/list", {}))


@member.command("add")
@click.option("--peer-urls", default="", help="comma separated peer URLs for the new member.")
@click.option("--learner", is_flag=True, help="indicates if the new member is raft learner")
@ARGS
def member_add(args: tuple[str, ...], peer_urls: str, learner: bool) -> None:
    """Adds a member into the cluster."""
    if not args:
        raise bad_args("member name not provided")
    if len(args) > 1:
        msg = "too many arguments"
        for extra in args[1:]:
            if extra.lower().startswith("http"):
                msg += f", did you mean --peer-urls={extra}"
        raise bad_args(msg)
    if not peer_urls:
        raise bad_args("member peer urls not provided")
    name = args[0]
    body: JSON = {"peerURLs": peer_urls.split(",")}
    if learner:
        body["isLearner"] = True
    client = ctl().client()
    resp = client.call("/v3/cluster/member/add", body)
    printer = ctl().printer()
    printer.member_add(resp)
    if type(printer) is Printer:
        new_id = resp.get("member", {}).get("ID")
        listing = client.call("/v3/cluster/member/list", {})
        conf = [f"{name if m.get('ID') == new_id else m.get('name', '')}={u}"
                for m in listing.get("members", []) for u in m.get("peerURLs", [])]
        out(f"\nETCD_NAME={go_quote(name)}\nETCD_INITIAL_CLUSTER={go_quote(','.join(conf))}\n"
            f"ETCD_INITIAL_ADVERTISE_PEER_URLS={go_quote(peer_urls)}\n"
            'ETCD_INITIAL_CLUSTER_STATE="existing"\n')


def _member_id(args: tuple[str, ...]) -> int:
    if len(args) != 1:
        raise bad_args("member ID is not provided")
    return parse_hex_id(args[0], "member")


@member.command("remove")
@ARGS
def member_remove(args: tuple[str, ...]) -> None:
    """Removes a member from the cluster."""
    mid = _member_id(args)
    resp = ctl().client().call("/v3/cluster/member/remove", {"ID": str(mid)})
    ctl().printer().member_change("removed from", mid, resp)


@member.command("update")
@click.option("--peer-urls", default="", help="comma separated peer URLs for the updated member.")
@ARGS
def member_update(args: tuple[str, ...], peer_urls: str) -> None:
    """Updates a member in the cluster."""
    mid = _member_id(args)
    if not peer_urls:
        raise bad_args("member peer urls not provided")
    resp = ctl().client().call("/v3/cluster/member/update",
                               {"ID": str(mid), "peerURLs": peer_urls.split(",")})
    ctl().printer().member_change("updated in", mid, resp)


@member.command("promote")
@ARGS
def member_promote(args: tuple[str, ...]) -> None:
    """Promotes a non-voting member in the cluster."""
    mid = _member_id(args)
    resp = ctl().client().call("/v3/cluster/member/promote", {"ID": str(mid)})
    ctl().printer().member_change("promoted in", mid, resp)


# --- endpoint -----------------------------------------------------------------------------------
@click.group("endpoint")
@click.option("--cluster", is_flag=True, help="use all endpoints from the cluster member list")
@click.pass_context
def endpoint(ctx: click.Context, cluster: bool) -> None:
    """Endpoint related commands."""
    ctx.meta["ctl.cluster"] = cluster


def _endpoints(cluster: bool) -> list[str]:
    if not cluster:
        return ctl().endpoints
    listing = ctl().client().call("/v3/cluster/member/list", {})
    eps: list[str] = []
    for m in listing.get("members", []):
        for u in m.get("clientURLs", []):
            if u not in eps:
                eps.append(u)
    return eps


def _one(ep: str) -> GatewayClient:
    return GatewayClient(ctl().config([ep]))


def _cluster_flag(cluster: bool) -> bool:
    return cluster or bool(click.get_current_context().meta.get("ctl.cluster"))


CLUSTER = click.option("--cluster", is_flag=True, help="use all endpoints from the cluster member list")


@endpoint.command("health")
@CLUSTER
def endpoint_health(cluster: bool) -> None:
    """Checks the healthiness of endpoints specified in `--endpoints` flag."""
    eps = _endpoints(_cluster_flag(cluster))
    configs = [ctl().config([ep]) for ep in eps]  # built here: click's context is thread-local
    with ThreadPoolExecutor(max_workers=max(len(eps), 1)) as pool:
        futures = [pool.submit(_check_health, ep, cfg) for ep, cfg in zip(eps, configs, strict=True)]
        # etcdctl checks all endpoints at once and reports them in the order the answers arrive.
        results = [f.result() for f in as_completed(futures)]
    ctl().printer().endpoint_health(results)
    if not all(h.health for h in results):
        raise CtlError("unhealthy cluster", 1)


def _check_health(ep: str, config: ClientConfig) -> EpHealth:
    """etcdctl 3.4's probe: a linearizable read of "health" (permission denied counts as healthy)."""
    start = time.monotonic()
    health = EpHealth(ep=ep, health=False, took="")
    try:
        client = GatewayClient(config)
        try:
            while True:
                try:
                    client.call("/v3/kv/range", {"key": base64.b64encode(b"health").decode()})
                    break
                except Unreachable:
                    # Like gRPC, keep dialling until the command deadline rather than failing at once.
                    if time.monotonic() - start + HEALTH_RETRY_S >= config.command_timeout:
                        time.sleep(max(config.command_timeout - (time.monotonic() - start), 0))
                        raise
                    time.sleep(HEALTH_RETRY_S)
            health.health = True
        finally:
            client.close()
    except GatewayError as exc:
        health.health = exc.message == "etcdserver: permission denied"
        health.error = "" if health.health else exc.message
    except CtlError as exc:
        health.error = exc.message
    health.took = go_duration(time.monotonic() - start)
    return health


@endpoint.command("status")
@CLUSTER
def endpoint_status(cluster: bool) -> None:
    """Prints out the status of endpoints specified in `--endpoints` flag."""
    statuses, failed = [], False
    for ep in _endpoints(_cluster_flag(cluster)):
        try:
            statuses.append(EpStatus(ep, ctl().client().call("/v3/maintenance/status", {}, url=_url(ep))))
        except CtlError as exc:
            sys.stderr.write(f"Failed to get the status of endpoint {ep} ({exc.message})\n")
            failed = True
    ctl().printer().endpoint_status(statuses)
    if failed:
        sys.exit(1)


@endpoint.command("hashkv")
@CLUSTER
@click.option("--rev", default=0, type=int, help="maximum revision to hash (default: all revisions)")
def endpoint_hashkv(cluster: bool, rev: int) -> None:
    """Prints the KV history hash for each endpoint in --endpoints."""
    hashes, failed = [], False
    for ep in _endpoints(_cluster_flag(cluster)):
        try:
            body = {"revision": str(rev)} if rev else {}
            hashes.append(EpHash(ep, ctl().client().call("/v3/maintenance/hashkv", body, url=_url(ep))))
        except CtlError as exc:
            sys.stderr.write(f"Failed to get the hash of endpoint {ep} ({exc.message})\n")
            failed = True
    ctl().printer().endpoint_hashkv(hashes)
    if failed:
        sys.exit(1)


def _url(ep: str) -> str:
    return base_url(ep, bool(ctl().cacert or ctl().cert or ctl().insecure_skip_verify))


# --- move-leader, alarm, defrag -----------------------------------------------------------------
@click.command("move-leader")
@ARGS
def move_leader(args: tuple[str, ...]) -> None:
    """Transfers leadership to another etcd cluster member."""
    if len(args) != 1:
        raise bad_args("move-leader command needs 1 argument")
    try:
        target = int(args[0], 16)
    except ValueError:
        raise bad_args(f'strconv.ParseUint: parsing "{args[0]}": invalid syntax') from None
    client = ctl().client()
    for ep in ctl().endpoints:
        status = client.call("/v3/maintenance/status", {}, url=_url(ep))
        leader = int(status.get("leader", 0))
        if int(status.get("header", {}).get("member_id", 0)) == leader:
            resp = client.call("/v3/maintenance/transfer-leadership", {"targetID": str(target)}, url=_url(ep))
            ctl().printer().move_leader(leader, target, resp)
            return
    raise bad_args(f"no leader endpoint given at [{' '.join(ctl().endpoints)}]")


@click.group("alarm")
def alarm() -> None:
    """Alarm related commands."""


@alarm.command("list")
def alarm_list() -> None:
    """Lists all alarms."""
    ctl().printer().alarm(ctl().client().call("/v3/maintenance/alarm", {"action": "GET"}))


@alarm.command("disarm")
def alarm_disarm() -> None:
    """Disarms all alarms."""
    client = ctl().client()
    resp = client.call("/v3/maintenance/alarm", {"action": "GET"})
    for a in list(resp.get("alarms", [])):
        resp = client.call("/v3/maintenance/alarm", {"action": "DEACTIVATE", "memberID": a.get("memberID"),
                                                     "alarm": a.get("alarm")})
    ctl().printer().alarm(resp)


@click.command("defrag")
@CLUSTER
@click.option("--data-dir", default="", help="defragment a data directory not in use by etcd (offline)")
def defrag(cluster: bool, data_dir: str) -> None:
    """Defragments the storage of the etcd members with given endpoints."""
    if data_dir:
        raise CtlError("offline defragmentation is not supported by etcdpyctl", 4)
    failures = 0
    for ep in _endpoints(cluster):
        try:
            ctl().client().call("/v3/maintenance/defragment", {}, url=_url(ep))
            out(f"Finished defragmenting etcd member[{ep}]\n")
        except CtlError as exc:
            sys.stderr.write(f"Failed to defragment etcd member[{ep}] ({exc.message})\n")
            failures += 1
    if failures:
        sys.exit(1)


# --- snapshot -----------------------------------------------------------------------------------
@click.group("snapshot")
def snapshot() -> None:
    """Manages etcd node snapshots."""


@snapshot.command("save")
@ARGS
def snapshot_save(args: tuple[str, ...]) -> None:
    """Stores an etcd node backend snapshot to a given file."""
    if len(args) != 1:
        raise bad_args("snapshot save expects one argument")
    path = args[0]
    if len(ctl().endpoints) != 1:
        raise bad_args(f"snapshot must be requested to one selected node, not multiple {ctl().endpoints}")
    part = path + ".part"
    digest = hashlib.sha256()
    received, checksum = 0, b""
    bar = sys.stderr.isatty()
    with open(part, "wb") as fh:
        try:
            for msg in ctl().client().stream("/v3/maintenance/snapshot", {}, read_timeout=None):
                blob = base64.b64decode(msg.get("blob", ""))
                remaining = int(msg.get("remaining_bytes", 0))
                if not remaining and len(blob) == 32 and received and _is_checksum(digest, blob):
                    checksum = blob
                    continue
                fh.write(blob)
                digest.update(blob)
                received += len(blob)
                if bar:
                    _progress(received, received + remaining)
        except Unreachable:
            os.unlink(part)
            raise
    if bar:
        sys.stderr.write("\n")
    if checksum and digest.digest() != checksum:
        os.unlink(part)
        raise CtlError("snapshot: sha256 checksum mismatch", 1)
    if checksum:
        # etcdctl keeps the trailing SHA-256 in the file; `snapshot restore` checks it from there.
        with open(part, "ab") as fh:
            fh.write(checksum)
    os.replace(part, path)
    out(f"Snapshot saved at {path}\n")


def _is_checksum(digest: hashlib._Hash, blob: bytes) -> bool:
    return digest.copy().digest() == blob


def _progress(done: int, total: int) -> None:
    frac = done / total if total else 1.0
    sys.stderr.write(f"\rsnapshot [{'#' * int(frac * 30):<30}] {done}/{total} bytes")
    sys.stderr.flush()


@snapshot.command("status")
@ARGS
def snapshot_status(args: tuple[str, ...]) -> None:
    """Gets backend snapshot status of a given file."""
    if len(args) != 1:
        raise bad_args("snapshot status requires exactly one argument")
    from etcdpy.app.ctl.boltdb import db_status
    try:
        status = db_status(args[0])
    except OSError as exc:
        raise CtlError(f"stat {args[0]}: {exc.strerror.lower() if exc.strerror else exc}", 1) from exc
    except CtlError:
        status = _etcdpy_snapshot_status(args[0])
    printer = ctl().printer()
    printer.db_status(status)


def _etcdpy_snapshot_status(path: str) -> DBStatus:
    """Not etcd's bolt file: an etcdpy snapshot (docs/snapshot-format.md) is read by its own rules."""
    from etcdpy.app import backup

    try:
        st = backup.status(path)
    except backup.SnapshotError:
        raise CtlError("invalid database", 1) from None
    return DBStatus(hash=st.hash, revision=st.revision, total_key=st.total_key, total_size=st.total_size)


@snapshot.command("restore")
@ARGS
@click.option("--name", default="default", help="Human-readable name for this member")
@click.option("--initial-cluster", default="default=http://localhost:2380",
              help="Initial cluster configuration for restore bootstrap")
@click.option("--initial-cluster-token", default="etcd-cluster",
              help="Initial cluster token for the etcd cluster during restore bootstrap")
@click.option("--initial-advertise-peer-urls", default="http://localhost:2380",
              help="List of this member's peer URLs to advertise to the rest of the cluster")
@click.option("--data-dir", default="", help="Path to the data directory")
@click.option("--skip-hash-check", is_flag=True, help="Ignore snapshot integrity hash value")
def snapshot_restore(args: tuple[str, ...], name: str, initial_cluster: str, initial_cluster_token: str,
                     initial_advertise_peer_urls: str, data_dir: str, skip_hash_check: bool) -> None:
    """Restores an etcdpy member snapshot to an etcdpy data directory (a new cluster's member)."""
    if len(args) != 1:
        raise bad_args("snapshot restore requires exactly one argument")
    from etcdpy.app import backup

    try:
        backup.restore(args[0], name=name, initial_cluster=initial_cluster,
                       initial_advertise_peer_urls=initial_advertise_peer_urls.split(","),
                       initial_cluster_token=initial_cluster_token, data_dir=data_dir,
                       skip_hash_check=skip_hash_check)
    except backup.SnapshotError as exc:
        raise CtlError(str(exc), 1) from None

