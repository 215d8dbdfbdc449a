"""Authentication commands: auth enable/disable, user …, role … (/v3/auth/* on the gateway)."""

from __future__ import annotations

import getpass
import sys

import click

from etcdpy.app.ctl.client import JSON, GatewayError, b64
from etcdpy.app.ctl.context import bad_args, ctl
from etcdpy.app.ctl.printers import Printer, out, prefix_end

ARGS = click.argument("args", nargs=-1)


@click.group("auth")
def auth() -> None:
    """Enable or disable authentication."""


@auth.command("enable")
def auth_enable() -> None:
    """Enables authentication."""
    client = ctl().client()
    while True:
        try:
            client.call("/v3/auth/enable", {})
            break
        except GatewayError as exc:
            # etcdctl creates the root role on the way if that is all that is missing.
            if exc.message != "etcdserver: root user does not have root role":
                raise
            client.call("/v3/auth/role/add", {"name": "root"})
            client.call("/v3/auth/user/grant", {"user": "root", "role": "root"})
    out("Authentication Enabled\n")


@auth.command("disable")
def auth_disable() -> None:
    """Disables authentication."""
    ctl().client().call("/v3/auth/disable", {})
    out("Authentication Disabled\n")


def _password(name: str, interactive: bool) -> str:
    if not interactive:
        words = sys.stdin.readline().split()
        return words[0] if words else ""
    first = getpass.getpass(f"Password of {name}: ")
    again = getpass.getpass(f"Type password of {name} again for confirmation: ")
    if first != again:
        raise bad_args("given passwords are different")
    return first


@click.group("user")
def user() -> None:
    """User related commands."""


@user.command("add")
@click.option("--no-password", is_flag=True, help="Create a user without password (CN based auth only)")
@click.option("--interactive/--no-interactive", default=True, help="Read password from stdin instead")
@click.option("--new-user-password", default="", help="Supply password from the command line flag")
@ARGS
def user_add(args: tuple[str, ...], no_password: bool, interactive: bool, new_user_password: str) -> None:
    """Adds a new user."""
    if len(args) != 1:
        raise bad_args("user add command requires user name as its argument")
    body: JSON = {}
    if no_password:
        name = args[0]
        body["options"] = {"no_password": True}
    elif new_user_password:
        name, password = args[0], new_user_password
        body["password"] = password
    else:
        name, sep, password = args[0].partition(":")
        if not sep:
            password = _password(name, interactive)
        elif not name:
            raise bad_args("empty user name is not allowed")
        body["password"] = password
    resp = ctl().client().call("/v3/auth/user/add", {"name": name, **body})
    ctl().printer().auth_ack(f"User {name} created", resp)


@user.command("delete")
@ARGS
def user_delete(args: tuple[str, ...]) -> None:
    """Deletes a user."""
    if len(args) != 1:
        raise bad_args("user delete command requires user name as its argument")
    resp = ctl().client().call("/v3/auth/user/delete", {"name": args[0]})
    ctl().printer().auth_ack(f"User {args[0]} deleted", resp)


@user.command("get")
@click.option("--detail", is_flag=True, help="Show permissions of roles granted to the user")
@ARGS
def user_get(args: tuple[str, ...], detail: bool) -> None:
    """Gets detailed information of a user."""
    if len(args) != 1:
        raise bad_args("user get command requires user name as its argument")
    name = args[0]
    client = ctl().client()
    resp = client.call("/v3/auth/user/get", {"name": name})
    printer = ctl().printer()
    if detail and type(printer) is Printer:
        out(f"User: {name}\n")
        for role_name in resp.get("roles", []):
            out("\n")
            printer.role_get(role_name, client.call("/v3/auth/role/get", {"role": role_name}))
        return
    printer.user_get(name, resp)


@user.command("list")
def user_list() -> None:
    """Lists all users."""
    ctl().printer().names(ctl().client().call("/v3/auth/user/list", {}), "users")


@user.command("passwd")
@click.option("--interactive/--no-interactive", default=True, help="If true, read password interactively")
@ARGS
def user_passwd(args: tuple[str, ...], interactive: bool) -> None:
    """Changes password of user."""
    if len(args) != 1:
        raise bad_args("user passwd command requires user name as its argument")
    password = _password(args[0], interactive)
    resp = ctl().client().call("/v3/auth/user/changepw", {"name": args[0], "password": password})
    ctl().printer().auth_ack("Password updated", resp)


@user.command("grant-role")
@ARGS
def user_grant(args: tuple[str, ...]) -> None:
    """Grants a role to a user."""
    if len(args) != 2:
        raise bad_args("user grant command requires user name and role name as its argument")
    resp = ctl().client().call("/v3/auth/user/grant", {"user": args[0], "role": args[1]})
    ctl().printer().auth_ack(f"Role {args[1]} is granted to user {args[0]}", resp)


@user.command("revoke-role")
@ARGS
def user_revoke(args: tuple[str, ...]) -> None:
    """Revokes a role from a user."""
    if len(args) != 2:
        raise bad_args("user revoke-role requires user name and role name as its argument")
    resp = ctl().client().call("/v3/auth/user/revoke", {"name": args[0], "role": args[1]})
    ctl().printer().auth_ack(f"Role {args[1]} is revoked from user {args[0]}", resp)


@click.group("role")
def role() -> None:
    """Role related commands."""


@role.command("add")
@ARGS
def role_add(args: tuple[str, ...]) -> None:
    """Adds a new role."""
    if len(args) != 1:
        raise bad_args("role add command requires role name as its argument")
    resp = ctl().client().call("/v3/auth/role/add", {"name": args[0]})
    ctl().printer().auth_ack(f"Role {args[0]} created", resp)


@role.command("delete")
@ARGS
def role_delete(args: tuple[str, ...]) -> None:
    """Deletes a role."""
    if len(args) != 1:
        raise bad_args("role delete command requires role name as its argument")
    resp = ctl().client().call("/v3/auth/role/delete", {"role": args[0]})
    ctl().printer().auth_ack(f"Role {args[0]} deleted", resp)


@role.command("get")
@ARGS
def role_get(args: tuple[str, ...]) -> None:
    """Gets detailed information of a role."""
    if len(args) != 1:
        raise bad_args("role get command requires role name as its argument")
    ctl().printer().role_get(args[0], ctl().client().call("/v3/auth/role/get", {"role": args[0]}))


@role.command("list")
def role_list() -> None:
    """Lists all roles."""
    ctl().printer().names(ctl().client().call("/v3/auth/role/list", {}), "roles")


def _perm_range(args: tuple[str, ...], prefix: bool, from_key: bool) -> tuple[bytes, bytes]:
    key = args[0].encode("utf-8", "surrogateescape")
    end = b""
    if len(args) > 1:
        if prefix or from_key:
            raise bad_args("unexpected endkey argument with --prefix or --from-key")
        end = args[1].encode("utf-8", "surrogateescape")
    if prefix:
        end = prefix_end(key) if key else b"\x00"
        key = key or b"\x00"
    if from_key:
        key, end = key or b"\x00", b"\x00"
    return key, end


@role.command("grant-permission")
@click.option("--prefix", is_flag=True, help="grant a prefix permission")
@click.option("--from-key", is_flag=True, help="grant a permission of keys that are >= the given key")
@ARGS
def role_grant(args: tuple[str, ...], prefix: bool, from_key: bool) -> None:
    """Grants a key to a role."""
    if len(args) < 3:
        raise bad_args("role grant command requires role name, permission type, and key [endkey] as its "
                       "argument")
    perm_type = args[1].upper()
    if perm_type not in ("READ", "WRITE", "READWRITE"):
        raise bad_args(f"invalid permission type: {args[1]}")
    key, end = _perm_range(args[2:], prefix, from_key)
    perm: JSON = {"permType": perm_type, "key": b64(key)}
    if end:
        perm["range_end"] = b64(end)
    resp = ctl().client().call("/v3/auth/role/grant", {"name": args[0], "perm": perm})
    ctl().printer().auth_ack(f"Role {args[0]} updated", resp)


@role.command("revoke-permission")
@click.option("--prefix", is_flag=True, help="revoke a prefix permission")
@click.option("--from-key", is_flag=True, help="revoke a permission of keys that are >= the given key")
@ARGS
def role_revoke(args: tuple[str, ...], prefix: bool, from_key: bool) -> None:
    """Revokes a key from a role."""
    if len(args) < 2:
        raise bad_args("role revoke-permission command requires role name and key [endkey] as its argument")
    key, end = _perm_range(args[1:], prefix, from_key)
    body: JSON = {"role": args[0], "key": b64(key)}
    if end:
        body["range_end"] = b64(end)
    resp = ctl().client().call("/v3/auth/role/revoke", body)
    k, e = key.decode("utf-8", "surrogateescape"), end.decode("utf-8", "surrogateescape")
    if not e:
        text = f"Permission of key {k} is revoked from role {args[0]}"
    elif e != "\x00":
        text = f"Permission of range [{k}, {e}) is revoked from role {args[0]}"
    else:
        text = f"Permission of range [{k}, <open ended> is revoked from role {args[0]}"
    ctl().printer().auth_ack(text, resp)

