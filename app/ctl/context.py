"""Global settings of one etcdpyctl run (etcdctl's persistent flags and ETCDCTL_* variables).

Commands get a ``Ctl`` object from click's context: it builds the gateway client lazily (so argument
errors are reported before any network traffic, as etcdctl does) and the printer for ``-w``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import click

from etcdpy.app.ctl.client import ClientConfig, CtlError, GatewayClient
from etcdpy.app.ctl.printers import Printer, make_printer

EXIT_BAD_ARGS = 128
EXIT_INVALID_INPUT = 3
EXIT_BAD_CONNECTION = 2
EXIT_INTERRUPTED = 5

_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration for the timeouts (``2s``, ``500ms``, ``1m30s``), in seconds."""
    pos, total = 0, 0.0
    if text == "0":
        return 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise CtlError(f'time: invalid duration "{text}"', 1)
    return total


@dataclass
class Ctl:
    endpoints: list[str]
    write_out: str = "simple"
    is_hex: bool = False
    dial_timeout: float = 2.0
    command_timeout: float = 5.0
    user: str | None = None
    password: str | None = None
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    insecure_skip_verify: bool = False
    _client: GatewayClient | None = field(default=None, repr=False)

    def client(self) -> GatewayClient:
        if self._client is None:
            self._client = GatewayClient(self.config(self.endpoints))
        return self._client

    def config(self, endpoints: list[str]) -> ClientConfig:
        return ClientConfig(endpoints=endpoints, dial_timeout=self.dial_timeout,
                            command_timeout=self.command_timeout, user=self.user, password=self.password,
                            cacert=self.cacert, cert=self.cert, key=self.key,
                            insecure_skip_verify=self.insecure_skip_verify)

    def printer(self, value_only: bool = False) -> Printer:
        return make_printer(self.write_out, self.is_hex, value_only)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def ctl() -> Ctl:
    obj = click.get_current_context().find_object(Ctl)
    assert obj is not None, "the root command stores a Ctl"
    return obj


def bad_args(message: str) -> CtlError:
    return CtlError(message, EXIT_BAD_ARGS)


def parse_hex_id(text: str, what: str) -> int:
    """etcdctl parses lease and member ids as hex (strconv.ParseInt/ParseUint base 16)."""
    func = "ParseInt" if what.startswith("lease") else "ParseUint"
    try:
        value = int(text, 16)
        if text.strip() != text or text.startswith(("0x", "0X", "+")) or "_" in text:
            raise ValueError(text)
    except ValueError:
        reason = f'strconv.{func}: parsing "{text}": invalid syntax'
        if what == "lease":
            raise bad_args(f"bad lease ID ({reason}), expecting ID in Hex") from None
        if what == "lease arg":
            raise bad_args(f"bad lease ID arg ({reason}), expecting ID in Hex") from None
        raise bad_args(f"bad member ID arg ({reason}), expecting ID in Hex") from None
    return value
