"""What `etcdpy --help` and `etcdpy --version` print, in the shape of etcd 3.4's own output.

The usage lists every flag of app/config.py, in etcd's sections and order, with its default and a
one-line description; `usage()` refuses to render if a flag has no description (or a description names
no flag), so a new flag cannot be left out of the help.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from etcdpy.app.config import FLAGS, Config
from etcdpy.app.server.etcd_server import (
    VERSION as ETCD_API_VERSION,  # the etcd release whose v3 API etcdpy speaks
)

_HEAD = """Usage:

  etcdpy [flags]
    Start an etcdpy member.

  etcdpy --version
    Show the version of etcdpy.

  etcdpy -h | --help
    Show the help information about etcdpy.

  etcdpy --config-file
    Path to the server configuration file. Note that if a configuration file is provided, other command \
line flags will be ignored.
"""

# (section, [(flag, description)]) in etcd's order; defaults come from Config.
SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Member", [
        ("name", "Human-readable name for this member."),
        ("data-dir", "Path to the data directory."),
        ("snapshot-count", "Number of committed transactions to trigger a snapshot to disk."),
        ("heartbeat-interval", "Time (in milliseconds) of a heartbeat interval."),
        ("election-timeout", "Time (in milliseconds) for an election to timeout."),
        ("listen-peer-urls", "List of URLs to listen on for peer traffic."),
        ("listen-client-urls", "List of URLs to listen on for client traffic."),
        ("quota-backend-bytes", "Raise alarms when backend size exceeds the given quota. 0 means use the "
                                "default quota."),
        ("max-txn-ops", "Maximum number of operations permitted in a transaction."),
        ("max-request-bytes", "Maximum client request size in bytes the server will accept."),
    ]),
    ("Clustering", [
        ("initial-advertise-peer-urls",
         "List of this member's peer URLs to advertise to the rest of the cluster."),
        ("initial-cluster", "Initial cluster configuration for bootstrapping."),
        ("initial-cluster-state", "Initial cluster state ('new' or 'existing')."),
        ("initial-cluster-token", "Initial cluster token for the etcd cluster during bootstrap."),
        ("advertise-client-urls", "List of this member's client URLs to advertise to the public."),
        ("auto-compaction-retention", "Auto compaction retention length. 0 means disable auto compaction."),
        ("auto-compaction-mode", "Interpret 'auto-compaction-retention' one of: periodic|revision."),
    ]),
    ("Security", [
        ("cors", "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, "
                 "(empty or * means allow all)."),
    ]),
    ("Client TLS", [
        ("cert-file", "Path to the client server TLS cert file."),
        ("key-file", "Path to the client server TLS key file."),
        ("client-cert-auth", "Enable client cert authentication."),
        ("trusted-ca-file", "Path to the client server TLS trusted CA cert file."),
        ("auto-tls", "Client TLS using generated certificates."),
    ]),
    ("Peer TLS", [
        ("peer-cert-file", "Path to the peer server TLS cert file."),
        ("peer-key-file", "Path to the peer server TLS key file."),
        ("peer-client-cert-auth", "Enable peer client cert authentication."),
        ("peer-trusted-ca-file", "Path to the peer server TLS trusted CA file."),
        ("peer-auto-tls", "Peer TLS using self-generated certificates if --peer-key-file and "
                          "--peer-cert-file are not provided."),
        ("cipher-suites", "Comma-separated list of supported TLS cipher suites between client/server and "
                          "peers (empty will be auto-populated by Go)."),
        ("tls-min-version", "Minimum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3."),
    ]),
    ("Auth", [
        ("auth-token", "Specify a v3 authentication token type and its options ('simple' or 'jwt')."),
        ("auth-token-ttl", "The lifetime in seconds of the auth token."),
        ("bcrypt-cost", "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. "
                        "Valid values are between 4 and 31."),
    ]),
    ("Logging", [
        ("logger", "Specify 'zap' for structured logging or 'capnslog'."),
        ("log-outputs", "Specify 'stdout' or 'stderr' to skip journald logging even when running under "
                        "systemd, or list of comma separated output targets."),
        ("log-level", "Configures log level. Only supports debug, info, warn, error, panic, or fatal."),
        ("access-log", "Log every client request (etcdpy; off by default)."),
        ("client-workers", "Processes that serve plain-HTTP clients beside this one (etcdpy; -1 = one per "
                           "core beyond the first, 0 = none)."),
    ]),
    ("Profiling and Monitoring", [
        ("listen-metrics-urls", "List of URLs to listen on for the metrics and health endpoints."),
    ]),
    ("Experimental feature", [
        ("experimental-watch-progress-notify-interval",
         "Duration of periodical watch progress notification."),
        ("experimental-initial-corrupt-check",
         "Enable to check data corruption before serving any client/peer traffic."),
        ("experimental-corrupt-check-time", "Duration of time between cluster corruption check passes."),
        ("experimental-snapshot-catchup-entries", "Number of entries for a slow follower to catch up after "
                                                  "compacting the raft storage entries."),
        ("experimental-advertise-version", "The server version this member announces (etcdpy, for tests of "
                                           "the cluster version rules)."),
    ]),
]


def _default(flag: str) -> str:
    if flag == "data-dir":
        return "${name}.etcdpy"
    if flag == "initial-cluster":
        return "default=http://localhost:2380"
    value = getattr(Config(), flag.replace("-", "_"))
    return ",".join(value) if isinstance(value, list) else str(value)


def usage() -> str:
    described = {flag for _, flags in SECTIONS for flag, _ in flags}
    undocumented = FLAGS - described - {"config-file"}
    unknown = described - FLAGS
    if undocumented or unknown:
        raise RuntimeError(f"usage out of date: undocumented {sorted(undocumented)}, "
                           f"unknown {sorted(unknown)}")
    lines = [_HEAD]
    for section, flags in SECTIONS:
        lines.append(f"{section}:")
        for flag, text in flags:
            lines.append(f"  --{flag} '{_default(flag)}'")
            lines.append(f"    {text}")
        lines.append("")
    return "\n".join(lines)


def etcdpy_version() -> str:
    try:
        return metadata.version("etcdpy")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def version() -> str:
    """etcd prints `etcd Version`, `Git SHA`, `Go Version`, `Go OS/Arch`; etcdpy the same shape."""
    return (
        f"etcdpy Version: {etcdpy_version()}\n"
        f"etcd API Version: {ETCD_API_VERSION}\n"
        f"Python Version: {platform.python_version()}\n"
        f"Python OS/Arch: {sys.platform}/{platform.machine()}\n"
    )
