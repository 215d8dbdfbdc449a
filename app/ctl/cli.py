"""etcdpyctl's entry point: the root command, its global flags, and etcdctl's error/exit conventions.

Errors leave as ``Error: <message>`` on stderr with etcdctl's exit codes (1 server error, 2 connection or
authentication failure, 3 invalid input, 4 unsupported output format, 128 bad arguments). The command
groups live in the ``cmd_*`` modules and are registered here.
"""

from __future__ import annotations

import sys

import click

from etcdpy.app.ctl import argv as argv_mod
from etcdpy.app.ctl.client import CtlError
from etcdpy.app.ctl.cmd_auth import auth, role, user
from etcdpy.app.ctl.cmd_cluster import alarm, defrag, endpoint, member, move_leader, snapshot
from etcdpy.app.ctl.cmd_concurrency import elect, lock
from etcdpy.app.ctl.cmd_kv import compaction, delete, get, put, txn, watch
from etcdpy.app.ctl.cmd_lease import lease
from etcdpy.app.ctl.cmd_misc import check, export_cmd, import_cmd, version
from etcdpy.app.ctl.context import Ctl, parse_duration


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
# A string slice, as in pflag: repeating the flag appends to the list.
@click.option("--endpoints", multiple=True, help="endpoints, comma separated [default: 127.0.0.1:2379]")
@click.option("-w", "--write-out", "write_out", default="simple",
              help="set the output format (fields, json, simple, table, yaml)")
@click.option("--hex", "is_hex", is_flag=True, help="print byte strings as hex encoded strings")
@click.option("--dial-timeout", default="2s", help="dial timeout for client connections")
@click.option("--command-timeout", default="5s", help="timeout for short running command")
@click.option("--keepalive-time", default="2s", hidden=True)
@click.option("--keepalive-timeout", default="6s", hidden=True)
@click.option("--cacert", default=None, help="verify certificates of TLS servers using this CA bundle")
@click.option("--cert", default=None, help="identify secure client using this TLS certificate file")
@click.option("--key", default=None, help="identify secure client using this TLS key file")
@click.option("--user", default=None, help="username[:password] for authentication")
@click.option("--password", default=None, help="password for authentication")
@click.option("--insecure-skip-tls-verify", is_flag=True, help="skip server certificate verification")
@click.option("--insecure-transport", is_flag=True, hidden=True)
@click.option("--insecure-discovery", is_flag=True, hidden=True)
@click.option("--debug", is_flag=True, hidden=True)
@click.option("-d", "--discovery-srv", default=None, hidden=True)
@click.option("--discovery-srv-name", default=None, hidden=True)
@click.pass_context
def root(ctx: click.Context, endpoints: tuple[str, ...], write_out: str, is_hex: bool, dial_timeout: str,
         command_timeout: str, cacert: str | None, cert: str | None, key: str | None, user: str | None,
         password: str | None, insecure_skip_tls_verify: bool, **_ignored: object) -> None:
    """A simple command line client for etcd and etcdpy, over the v3 JSON gateway."""
    if password is not None and user is not None and ":" in user:
        raise CtlError("Password should not be included in username when --password is used", 128)
    eps = [e for flag in endpoints or ("127.0.0.1:2379",) for e in flag.split(",") if e]
    obj = Ctl(endpoints=eps, write_out=write_out, is_hex=is_hex,
              dial_timeout=parse_duration(dial_timeout), command_timeout=parse_duration(command_timeout),
              user=user, password=password, cacert=cacert, cert=cert, key=key,
              insecure_skip_verify=insecure_skip_tls_verify)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


for command in (get, put, delete, txn, compaction, watch, lease, member, endpoint, move_leader, snapshot,
                alarm, defrag, auth, user, role, lock, elect, check, export_cmd, import_cmd, version):
    root.add_command(command)


def bool_flags(group: click.Group) -> dict[str, str | None]:
    """Every boolean long flag in the tree → its "off" twin (or None), for argv normalisation."""
    found: dict[str, str | None] = {}

    def walk(cmd: click.Command) -> None:
        for param in cmd.params:
            if isinstance(param, click.Option) and param.is_flag:
                off = param.secondary_opts[0] if param.secondary_opts else None
                for opt in param.opts:
                    if opt.startswith("--"):
                        found[opt] = off
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                walk(sub)

    walk(group)
    return found


def main(args: list[str] | None = None) -> None:
    words = list(sys.argv[1:] if args is None else args)
    words = argv_mod.normalise(words, bool_flags(root))
    try:
        root.main(words, prog_name="etcdpyctl", standalone_mode=False)
    except CtlError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"Error: {exc.message}\n")
        sys.exit(exc.exit_code)
    except click.NoSuchOption as exc:
        sys.stderr.write(f"Error: unknown flag: {exc.option_name}\n")
        sys.exit(1)
    except click.UsageError as exc:
        sys.stderr.write(f"Error: {exc.format_message()}\n")
        sys.exit(1)
    except click.exceptions.Abort:
        sys.exit(5)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
