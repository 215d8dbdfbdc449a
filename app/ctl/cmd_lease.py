"""Lease commands: grant, revoke, timetolive, list, keep-alive (ids in hex, as etcdctl takes them)."""

from __future__ import annotations

import json
import sys
import time

import click

from etcdpy.app.ctl.client import CtlError, GatewayError
from etcdpy.app.ctl.context import EXIT_BAD_CONNECTION, bad_args, ctl, parse_hex_id
from etcdpy.app.ctl.printers import out

ARGS = click.argument("args", nargs=-1)


@click.group("lease")
def lease() -> None:
    """Lease related commands."""


@lease.command("grant")
@ARGS
def grant(args: tuple[str, ...]) -> None:
    """Creates leases."""
    if len(args) != 1:
        raise bad_args("lease grant command needs TTL argument")
    try:
        ttl = int(args[0])
    except ValueError:
        raise bad_args(f'bad TTL (strconv.ParseInt: parsing "{args[0]}": invalid syntax)') from None
    try:
        resp = ctl().client().call("/v3/lease/grant", {"TTL": str(ttl)})
    except CtlError as exc:
        raise CtlError(f"failed to grant lease ({exc.message})", 1) from exc
    ctl().printer().grant(resp)


@lease.command("revoke")
@ARGS
def revoke(args: tuple[str, ...]) -> None:
    """Revokes leases."""
    if len(args) != 1:
        raise bad_args("lease revoke command needs 1 argument")
    lease_id = parse_hex_id(args[0], "lease arg")
    try:
        resp = ctl().client().call("/v3/lease/revoke", {"ID": str(lease_id)})
    except CtlError as exc:
        raise CtlError(f"failed to revoke lease ({exc.message})", 1) from exc
    ctl().printer().revoke(lease_id, resp)


@lease.command("timetolive")
@click.option("--keys", is_flag=True, help="Get keys attached to this lease")
@ARGS
def timetolive(args: tuple[str, ...], keys: bool) -> None:
    """Get lease information."""
    if len(args) != 1:
        raise bad_args("lease timetolive command needs lease ID as argument")
    lease_id = parse_hex_id(args[0], "lease arg")
    body: dict[str, object] = {"ID": str(lease_id)}
    if keys:
        body["keys"] = True
    ctl().printer().timetolive(ctl().client().call("/v3/lease/timetolive", body), keys)


@lease.command("list")
@ARGS
def list_leases(args: tuple[str, ...]) -> None:
    """List all active leases."""
    ctl().printer().leases(ctl().client().call("/v3/lease/leases", {}))


@lease.command("keep-alive")
@click.option("--once", is_flag=True, help="Resets the keep-alive time to its original value and exits")
@ARGS
def keep_alive(args: tuple[str, ...], once: bool) -> None:
    """Keeps leases alive (renew)."""
    if len(args) != 1:
        raise bad_args("lease keep-alive command needs lease ID as argument")
    lease_id = parse_hex_id(args[0], "lease arg")
    client = ctl().client()
    printer = ctl().printer()
    while True:
        resps = list(client.stream("/v3/lease/keepalive", json.dumps({"ID": str(lease_id)}).encode(),
                                   read_timeout=ctl().command_timeout))
        if not resps or int(resps[0].get("TTL", 0)) <= 0:
            if once:
                raise GatewayError("etcdserver: requested lease not found", 5, EXIT_BAD_CONNECTION)
            out(f"lease {lease_id:016x} expired or revoked.\n")
            return
        printer.keepalive(resps[0])
        sys.stdout.flush()
        if once:
            return
        time.sleep(max(int(resps[0]["TTL"]) / 3.0, 0.5))
