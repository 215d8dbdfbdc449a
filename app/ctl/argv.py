"""Make cobra/pflag command lines parse with click.

etcdctl (cobra) accepts things click does not: global flags anywhere on the line (``etcdctl get k
--endpoints=…``), booleans written ``--prefix=true`` / ``--interactive=false``, and ``-w=json``. This
module rewrites argv before click sees it: global flags are moved in front of the subcommand, and
boolean ``=value`` forms become the plain flag (or its ``--no-…`` twin, or nothing). Everything after
``--`` is left alone, as pflag does.
"""

from __future__ import annotations

import os

# Global flags that take a value, and boolean global flags (pflag long names, plus shorthands).
GLOBAL_VALUE = {"--endpoints", "--write-out", "-w", "--dial-timeout", "--command-timeout", "--keepalive-time",
                "--keepalive-timeout", "--cacert", "--cert", "--key", "--user", "--password",
                "--discovery-srv", "-d", "--discovery-srv-name"}
GLOBAL_BOOL = {"--hex", "--debug", "--insecure-transport", "--insecure-skip-tls-verify",
               "--insecure-discovery"}

# ETCDCTL_<NAME> → flag, as etcdctl binds its environment (flags given on the line win).
ENV_FLAGS = {
    "ETCDCTL_ENDPOINTS": "--endpoints", "ETCDCTL_WRITE_OUT": "--write-out",
    "ETCDCTL_DIAL_TIMEOUT": "--dial-timeout", "ETCDCTL_COMMAND_TIMEOUT": "--command-timeout",
    "ETCDCTL_CACERT": "--cacert", "ETCDCTL_CERT": "--cert", "ETCDCTL_KEY": "--key",
    "ETCDCTL_USER": "--user", "ETCDCTL_PASSWORD": "--password", "ETCDCTL_HEX": "--hex",
    "ETCDCTL_INSECURE_SKIP_TLS_VERIFY": "--insecure-skip-tls-verify",
    "ETCDCTL_INSECURE_TRANSPORT": "--insecure-transport", "ETCDCTL_DEBUG": "--debug",
}

TRUE = {"1", "t", "T", "true", "TRUE", "True"}
FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def _bool_form(name: str, value: str, bools: dict[str, str | None]) -> list[str] | None:
    """``--flag=value`` for a boolean: the argv words click should see, or None if not a bool."""
    if name not in bools:
        return None
    if value in TRUE:
        return [name]
    if value in FALSE:
        off = bools[name]
        return [off] if off else []
    return None


def normalise(argv: list[str], bools: dict[str, str | None],
              environ: dict[str, str] | None = None) -> list[str]:
    """Return argv with global flags first (environment defaults before them) and bools rewritten."""
    env = os.environ if environ is None else environ
    front: list[str] = []
    rest: list[str] = []
    given: set[str] = set()
    words = list(argv)
    idx = 0
    while idx < len(words):
        word = words[idx]
        if word == "--":
            rest.extend(words[idx:])
            break
        name, eq, value = word.partition("=")
        if name == "-w" and not eq and len(word) > 2:  # -wjson
            name, eq, value = "-w", "=", word[2:]
        if name in GLOBAL_VALUE:
            given.add("--write-out" if name == "-w" else "--discovery-srv" if name == "-d" else name)
            if eq:
                front.extend([name, value])
            elif idx + 1 < len(words):
                front.extend([name, words[idx + 1]])
                idx += 1
            else:
                front.append(name)
        elif name in GLOBAL_BOOL:
            given.add(name)
            if not eq or value in TRUE:
                front.append(name)
            elif value not in FALSE:
                front.append(word)
        elif eq and name.startswith("-"):
            converted = _bool_form(name, value, bools)
            rest.extend(converted if converted is not None else [word])
        else:
            rest.append(word)
        idx += 1
    defaults: list[str] = []
    for var, flag in ENV_FLAGS.items():
        if var in env and flag not in given:
            if flag in GLOBAL_BOOL:
                if env[var] in TRUE:
                    defaults.append(flag)
            else:
                defaults.extend([flag, env[var]])
    return defaults + front + rest
