"""The one configuration object, from etcd's flag names or an etcd-style YAML config file.

Flags follow Go's flag package as etcd uses it: `-flag value`, `--flag value`, `--flag=value`, bare
boolean flags; an unknown flag is refused with Go's message. With `--config-file`, the YAML file (same
keys as the flags) is the whole configuration and other flags are ignored, as in etcd.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

log = logging.getLogger("etcdpy.config")


class ConfigError(Exception):
    """The command line or config file is not acceptable; the message says why."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Flags etcd declares as signed; every other integer flag is unsigned (a negative value is refused).
_SIGNED = {"quota_backend_bytes"}


def parse_go_int(text: str, unsigned: bool) -> int:
    """strconv.ParseInt/ParseUint with base 0, as Go's flag package parses integer flags."""
    body = text[1:] if text[:1] in "+-" else text
    if not body or (unsigned and text.startswith("-")):
        raise ValueError(text)
    if len(body) > 1 and body[0] == "0" and body[1].isdigit():
        value = int(body.replace("_", ""), 8)  # a leading 0 is octal in Go
    else:
        value = int(body, 0)
    return -value if text.startswith("-") else value


@dataclass
class Config:
    name: str = "default"
    data_dir: str = ""
    listen_client_urls: list[str] = field(default_factory=lambda: ["http://localhost:2379"])
    advertise_client_urls: list[str] = field(default_factory=lambda: ["http://localhost:2379"])
    listen_peer_urls: list[str] = field(default_factory=lambda: ["http://localhost:2380"])
    initial_advertise_peer_urls: list[str] = field(default_factory=lambda: ["http://localhost:2380"])
    initial_cluster: str = ""
    initial_cluster_state: str = "new"
    initial_cluster_token: str = "etcd-cluster"
    heartbeat_interval: int = 100
    election_timeout: int = 1000
    snapshot_count: int = 100000
    # etcd 3.5's flag: log entries kept after a compaction so a slow follower catches up without a snapshot
    experimental_snapshot_catchup_entries: int = 5000
    max_request_bytes: int = 1572864
    max_txn_ops: int = 128
    quota_backend_bytes: int = 0
    auto_compaction_mode: str = "periodic"
    auto_compaction_retention: str = "0"
    experimental_watch_progress_notify_interval: str = "10m"
    cors: str = "*"  # etcd's --cors: comma-separated allowed origins (used by the SSE watch endpoint)
    log_level: str = "info"
    config_file: str = ""

    def __post_init__(self) -> None:
        if not self.data_dir:
            self.data_dir = f"{self.name}.etcdpy"

    @property
    def watch_progress_notify_interval_s(self) -> float:
        return parse_duration(self.experimental_watch_progress_notify_interval)

    @property
    def cluster_members(self) -> dict[str, list[str]]:
        """--initial-cluster as {name: [peer URLs]}; a lone member names itself by default."""
        if not self.initial_cluster:
            return {self.name: list(self.initial_advertise_peer_urls)}
        members: dict[str, list[str]] = {}
        for part in self.initial_cluster.split(","):
            name, sep, url = part.strip().partition("=")
            if not sep or not url:
                raise ConfigError(f"invalid value {self.initial_cluster!r} for flag -initial-cluster")
            members.setdefault(name, []).append(url)
        return members

    def validate(self) -> None:
        for url in [*self.listen_client_urls, *self.advertise_client_urls, *self.listen_peer_urls,
                    *self.initial_advertise_peer_urls]:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"invalid URL {url!r}: expected http(s)://host:port")
        if self.initial_cluster_state not in ("new", "existing"):
            raise ConfigError(
                f'invalid value "{self.initial_cluster_state}" for flag -initial-cluster-state: invalid value'
            )
        mine = self.cluster_members.get(self.name)
        if mine is None:
            raise ConfigError(
                f"couldn't find local name {self.name!r} in the initial cluster configuration"
            )
        if sorted(mine) != sorted(self.initial_advertise_peer_urls):
            raise ConfigError(
                "--initial-cluster has "
                f"{self.name}={','.join(mine)} but missing from --initial-advertise-peer-urls="
                f"{','.join(self.initial_advertise_peer_urls)}"
            )
        try:
            parse_duration(self.experimental_watch_progress_notify_interval)
        except ValueError as exc:
            raise ConfigError(f'invalid value "{self.experimental_watch_progress_notify_interval}" for flag '
                              f"-experimental-watch-progress-notify-interval: {exc}") from None
        if self.max_txn_ops <= 0 or self.max_request_bytes <= 0:
            raise ConfigError("--max-txn-ops and --max-request-bytes must be positive")


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration (etcd's duration flags: `10m`, `1s`, `1m30s`, `500ms`), in seconds."""
    s = text.strip()
    if s == "0":
        return 0.0
    sign = -1.0 if s.startswith("-") else 1.0
    s = s[1:] if s[:1] in "+-" else s
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    pos = 0
    total = 0.0
    while pos < len(s):
        m = _DURATION.match(s, pos)
        if m is None:
            if _DURATION.match(s + "s", pos) and pos == 0:
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    return sign * total


_URL_LISTS = {
    "listen_client_urls", "advertise_client_urls", "listen_peer_urls", "initial_advertise_peer_urls",
}
_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _flag(attr: str) -> str:
    return attr.replace("_", "-")


FLAGS = {_flag(name) for name in _FIELDS}


def _convert(attr: str, raw: Any) -> Any:
    kind = _FIELDS[attr].type
    if attr in _URL_LISTS:
        if isinstance(raw, list):
            return [str(u) for u in raw]
        return [u.strip() for u in str(raw).split(",") if u.strip()]
    if kind == "int":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        try:
            return parse_go_int(str(raw), unsigned=attr not in _SIGNED)
        except ValueError:
            raise ConfigError(f'invalid value "{raw}" for flag -{_flag(attr)}: parse error') from None
    return str(raw)


def parse_args(argv: list[str]) -> Config:
    values: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            raise ConfigError(f"error verifying flags, '{arg}' is not a valid flag. See 'etcdpy --help'.",
                              exit_code=1)
        stripped = arg[2:] if arg.startswith("--") else arg[1:]
        if not stripped or stripped[0] in "-=":
            raise ConfigError(f"bad flag syntax: {arg}")
        name, has_value, value = stripped.partition("=")
        if name not in FLAGS:
            raise ConfigError(f"flag provided but not defined: -{name}")
        if not has_value:
            if i >= len(argv):
                raise ConfigError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        values[name.replace("-", "_")] = _convert(name.replace("-", "_"), value)
    if values.get("config_file"):
        return load_file(values["config_file"])
    cfg = Config(**values)
    cfg.validate()
    return cfg


def load_file(path: str) -> Config:
    try:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {path} must hold a mapping of etcd flag names")
    values: dict[str, Any] = {}
    for key, raw in doc.items():
        if key not in FLAGS:
            # etcd ignores keys it does not know; an etcd config file must keep working here.
            log.warning("config file %s: ignoring unknown key %r", path, key)
            continue
        if raw is None:
            continue
        values[key.replace("-", "_")] = _convert(key.replace("-", "_"), raw)
    values["config_file"] = path
    cfg = Config(**values)
    cfg.validate()
    return cfg
