"""The one configuration object, from etcd's flag names or an etcd-style YAML config file.

Flags follow Go's flag package as etcd uses it: `-flag value`, `--flag value`, `--flag=value`, bare
boolean flags; an unknown flag is refused with Go's message. With `--config-file`, the YAML file (same
keys as the flags) is the whole configuration and other flags are ignored, as in etcd. `-h`/`--help`
and `--version` end parsing with `HelpRequested`/`VersionRequested` for the command to answer. Flags
not on the command line may come from etcd's `ETCD_<FLAG>` environment variables (`flags_from_env`).

Values are validated as etcd validates them, with etcd's messages.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
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


class HelpRequested(Exception):
    """`-h`/`--help` was given: print the usage and exit 0, as etcd does."""


class VersionRequested(Exception):
    """`--version` was given (and the flags parsed): print the versions and exit 0, as etcd does."""


# etcd 3.4's --log-level values (capnslog's names) and the Python logging level each maps to.
LOG_LEVELS = {
    "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
    "panic": logging.CRITICAL, "fatal": logging.CRITICAL,
}
COMPACTION_MODES = ("periodic", "revision")

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
    experimental_corrupt_check_time: str = "0s"  # leader's periodic hashkv comparison; 0 = off
    experimental_initial_corrupt_check: bool = False
    # TLS (app/tls.py builds the contexts): etcd's client and peer security flags, and etcd 3.5's
    # --tls-min-version. --cipher-suites is a comma-separated list of Go's TLS 1.2 suite names.
    cert_file: str = ""
    key_file: str = ""
    trusted_ca_file: str = ""
    client_cert_auth: bool = False
    auto_tls: bool = False
    peer_cert_file: str = ""
    peer_key_file: str = ""
    peer_trusted_ca_file: str = ""
    peer_client_cert_auth: bool = False
    peer_auto_tls: bool = False
    cipher_suites: str = ""
    tls_min_version: str = "TLS1.2"
    auth_token: str = "simple"  # "simple" or "jwt,pub-key=…,priv-key=…,sign-method=…,ttl=…"
    auth_token_ttl: int = 300  # seconds an unused simple token lives
    bcrypt_cost: int = 10
    cors: str = "*"  # etcd's --cors: comma-separated allowed origins (used by the SSE watch endpoint)
    log_level: str = "info"
    # Observability (etcd's flags): a separate listener for /metrics and /health, and the log format.
    listen_metrics_urls: list[str] = field(default_factory=list)
    logger: str = "capnslog"  # etcd 3.4's default; "zap" writes JSON lines
    log_outputs: list[str] = field(default_factory=lambda: ["default"])
    access_log: bool = False  # beyond etcd: one log line per gateway request
    # Beyond etcd: processes that parse clients' HTTP (app/front); -1 = one per core beyond the first.
    client_workers: int = -1
    # Beyond etcd, for tests of mixed-version clusters: the server version this member announces.
    experimental_advertise_version: str = ""
    config_file: str = ""

    def __post_init__(self) -> None:
        if not self.data_dir:
            self.data_dir = f"{self.name}.etcdpy"

    @property
    def python_log_level(self) -> int:
        return LOG_LEVELS[self.log_level]

    @property
    def compaction_retention(self) -> float:
        """--auto-compaction-retention as etcd reads it: seconds (periodic mode) or revisions (revision)."""
        return parse_compaction_retention(self.auto_compaction_mode, self.auto_compaction_retention)

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
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f'unknown level "{self.log_level}": --log-level only supports debug, info, '
                              "warn, error, panic, or fatal")
        if self.auto_compaction_mode not in COMPACTION_MODES:
            raise ConfigError("error verifying flags, unknown auto-compaction-mode "
                              f"\"{self.auto_compaction_mode}\". See 'etcdpy --help'.", exit_code=1)
        try:
            parse_compaction_retention(self.auto_compaction_mode, self.auto_compaction_retention)
        except ValueError as exc:
            raise ConfigError(f"error parsing CompactionRetention: {exc}", exit_code=1) from None
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
        try:
            parse_duration(self.experimental_corrupt_check_time)
        except ValueError as exc:
            raise ConfigError(f'invalid value "{self.experimental_corrupt_check_time}" for flag '
                              f"-experimental-corrupt-check-time: {exc}") from None
        # etcd 3.5's --tls-min-version checks (embed.Config.Validate), in etcd 3.4's flag-error wording.
        if self.tls_min_version not in ("", "TLS1.2", "TLS1.3"):
            raise ConfigError(f'error verifying flags, unexpected TLS version "{self.tls_min_version}" '
                              "(must be one of: TLS1.2, TLS1.3). See 'etcdpy --help'.", exit_code=1)
        if self.tls_min_version == "TLS1.3" and self.cipher_suites:
            raise ConfigError("error verifying flags, cipher suites cannot be configured when only TLS1.3 is "
                              "enabled. See 'etcdpy --help'.", exit_code=1)
        if not 4 <= self.bcrypt_cost <= 31:
            # etcd refuses a cost outside bcrypt's range before it starts.
            raise ConfigError(f"invalid bcrypt-cost: {self.bcrypt_cost} (must be between 4 and 31)")
        if self.max_txn_ops <= 0 or self.max_request_bytes <= 0:
            raise ConfigError("--max-txn-ops and --max-request-bytes must be positive")
        self._validate_observability()

    def _validate_observability(self) -> None:
        for url in self.listen_metrics_urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"invalid URL {url!r}: expected http(s)://host:port")
        if self.logger not in ("zap", "capnslog"):
            raise ConfigError(f"unknown logger option {self.logger!r}")
        plain = ("default", "stderr", "stdout")
        if self.logger == "capnslog" and any(o not in plain for o in self.log_outputs):
            # etcd: capnslog writes to stderr or stdout only; files need --logger zap.
            raise ConfigError(f"unknown log-output {','.join(self.log_outputs)!r} (only supports 'default', "
                              "'stderr', 'stdout')")
        version = self.experimental_advertise_version
        if version and not re.fullmatch(r"v?\d+\.\d+(\.\d+)?([-+].*)?", version):
            raise ConfigError(f'invalid value "{version}" for flag -experimental-advertise-version: '
                              "not a semantic version")


def parse_compaction_retention(mode: str, text: str) -> float:
    """etcd's parseCompactionRetention: a plain non-negative integer counts hours (periodic) or revisions
    (revision); anything else is a Go duration (in revision mode its nanoseconds count revisions)."""
    if re.fullmatch(r"[+-]?\d+", text) and int(text) >= 0:
        return int(text) * 3600.0 if mode == "periodic" else int(text)
    seconds = parse_duration(text)
    return seconds if mode == "periodic" else round(seconds * 1e9)


# A number and its unit: Go reads everything up to the next digit or dot as the unit.
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([^\d.]*)")
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
            raise ValueError(f'time: invalid duration "{text}"')
        unit = m.group(2)
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _UNIT_S:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(m.group(1)) * _UNIT_S[unit]
        pos = m.end()
    return sign * total


_URL_LISTS = {
    "listen_client_urls", "advertise_client_urls", "listen_peer_urls", "initial_advertise_peer_urls",
    "listen_metrics_urls", "log_outputs",
}
_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
# etcd's YAML config file holds the TLS settings only in these two sections (embed.securityConfig); the
# flag names at the top level of the file are ignored there, as etcd ignores them.
_SECURITY_SECTIONS = {"client-transport-security": "", "peer-transport-security": "peer_"}
_SECURITY_KEYS = {"cert-file": "cert_file", "key-file": "key_file", "client-cert-auth": "client_cert_auth",
                  "trusted-ca-file": "trusted_ca_file", "auto-tls": "auto_tls"}
_FILE_ONLY_IN_SECTIONS = {f"{prefix}{attr}" for prefix in _SECURITY_SECTIONS.values()
                          for attr in _SECURITY_KEYS.values()}


def _flag(attr: str) -> str:
    return attr.replace("_", "-")


FLAGS = {_flag(name) for name in _FIELDS}
HELP_FLAGS = ("h", "help")  # Go's flag package answers both with the usage
BOOL_FLAGS = {"version"}  # flags that are not Config fields and take no value
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _convert(attr: str, raw: Any) -> Any:
    kind = _FIELDS[attr].type
    if attr in _URL_LISTS:
        if isinstance(raw, list):
            return [str(u) for u in raw]
        return [u.strip() for u in str(raw).split(",") if u.strip()]
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw)
        if text not in _GO_BOOLS:
            raise ConfigError(f'invalid boolean value "{raw}" for -{_flag(attr)}: parse error')
        return _GO_BOOLS[text]
    if kind == "int":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        try:
            return parse_go_int(str(raw), unsigned=attr not in _SIGNED)
        except ValueError:
            raise ConfigError(f'invalid value "{raw}" for flag -{_flag(attr)}: parse error') from None
    return str(raw)


# strconv.ParseBool, which Go's flag package uses for boolean flags.
_GO_BOOLS = {v: True for v in ("1", "t", "T", "TRUE", "true", "True")} | {
    v: False for v in ("0", "f", "F", "FALSE", "false", "False")}


def parse_args(argv: list[str], environ: Mapping[str, str] | None = None) -> Config:
    """The command line, then etcd's `ETCD_<FLAG>` environment variables (os.environ unless given)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    version = False
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
        if name in HELP_FLAGS:
            raise HelpRequested()
        if name in BOOL_FLAGS:
            if has_value and value not in _TRUE | _FALSE:
                raise ConfigError(f'invalid boolean value "{value}" for -{name}: parse error')
            version = not has_value or value in _TRUE
            continue
        if name not in FLAGS:
            raise ConfigError(f"flag provided but not defined: -{name}")
        if not has_value and _FIELDS[name.replace("-", "_")].type == "bool":
            value = "true"  # a bare boolean flag, as Go's flag package takes it
        elif not has_value:
            if i >= len(argv):
                raise ConfigError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        values[name.replace("-", "_")] = _convert(name.replace("-", "_"), value)
    if version:  # etcd prints its version once the flags parse, before reading a config file
        raise VersionRequested()
    # etcd: a config file (from the flag or ETCD_CONFIG_FILE) replaces the other flags and variables.
    config_file = values.get("config_file") or env.get(ENV_PREFIX + "CONFIG_FILE", "")
    if config_file:
        return load_file(config_file)
    values.update(flags_from_env(env, set(values)))
    cfg = Config(**values)
    cfg.validate()
    return cfg


ENV_PREFIX = "ETCD_"


def flags_from_env(env: Mapping[str, str], set_by_flags: set[str]) -> dict[str, Any]:
    """etcd's `ETCD_<FLAG>` variables (pkg/flags.SetFlagsFromEnv): a non-empty `ETCD_SNAPSHOT_COUNT`
    sets `--snapshot-count` unless the command line did, which etcd refuses outright; any other
    `ETCD_` variable is reported as unrecognized. Returns the values, by Config attribute."""
    out: dict[str, Any] = {}
    used: set[str] = set()
    for name in sorted(FLAGS):
        attr = name.replace("-", "_")
        key = ENV_PREFIX + attr.upper()
        value = env.get(key, "")
        if not value or attr in set_by_flags:
            continue
        try:
            out[attr] = _convert(attr, value)
        except ConfigError:
            raise ConfigError(f'error verifying flags, invalid value "{value}" for {key}: parse error. '
                              "See 'etcdpy --help'.", exit_code=1) from None
        used.add(key)
        log.info("recognized and used environment variable %s=%s", key, value)
    shadowed = {ENV_PREFIX + attr.upper() for attr in set_by_flags}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key in used:
            continue
        if key in shadowed:
            raise ConfigError(f'conflicting environment variable "{key}" is shadowed by corresponding '
                              "command-line flag (either unset environment variable or disable flag)",
                              exit_code=1)
        log.warning("unrecognized environment variable %s=%s", key, value)
    return out


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
        if key in _SECURITY_SECTIONS:
            values.update(_security_section(key, raw))
            continue
        if key == "cipher-suites" and raw is not None:
            values["cipher_suites"] = ",".join(_yaml_strings(key, raw))
            continue
        if key not in FLAGS or key.replace("-", "_") in _FILE_ONLY_IN_SECTIONS:
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


def _go_json_type(raw: Any) -> str:
    """The JSON type name Go's encoding/json names in an unmarshal error."""
    if isinstance(raw, bool):
        return "bool"
    if isinstance(raw, int | float):
        return "number"
    if isinstance(raw, str):
        return "string"
    return "array" if isinstance(raw, list) else "object"


def _unmarshal_error(raw: Any, field: str, go_type: str) -> ConfigError:
    # etcd reads the YAML file through JSON into its configYAML struct; a value of the wrong type ends
    # the start with encoding/json's message.
    return ConfigError("error verifying flags, error unmarshaling JSON: while decoding JSON: json: cannot "
                       f"unmarshal {_go_json_type(raw)} into Go struct field {field} of type {go_type}. "
                       "See 'etcdpy --help'.", exit_code=1)


def _yaml_strings(key: str, raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise _unmarshal_error(raw, f"configYAML.{key}", "[]string")
    return list(raw)


def _security_section(section: str, raw: Any) -> dict[str, Any]:
    """`client-transport-security` / `peer-transport-security` as etcd reads them: five known keys
    (others ignored), strings and booleans only; the values become the flags' fields."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _unmarshal_error(raw, f"configYAML.{section}", "embed.securityConfig")
    prefix = _SECURITY_SECTIONS[section]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        attr = _SECURITY_KEYS.get(key)
        if attr is None or value is None:
            continue
        kind = "bool" if attr in ("client_cert_auth", "auto_tls") else "string"
        if (kind == "bool") != isinstance(value, bool) or (kind == "string" and not isinstance(value, str)):
            raise _unmarshal_error(value, f"securityConfig.{section}.{key}", kind)
        out[prefix + attr] = value
    return out
