"""README.md's curl examples of the plain REST view, executed: every ```console block of the section
"Plain REST view (beyond etcd)" runs in order against a fresh etcdpy (its `localhost:2379` rewritten
to the test server), and each command's output must be what the README shows under it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.servers import start_etcdpy

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Plain REST view (beyond etcd)"
PLACEHOLDER = "localhost:2379"
CURL_TIMED_OUT = 28  # `curl -m N` ends a stream this way


def examples(text: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs of the section's ```console blocks, in order."""
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end >= 0 else len(text)]
    pairs: list[tuple[str, str]] = []
    for block in re.findall(r"```console\n(.*?)```", section, flags=re.S):
        command: str | None = None
        output: list[str] = []
        for line in block.split("\n"):
            if line.startswith("$ "):
                if command is not None:
                    pairs.append((command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command is not None:
            pairs.append((command, "\n".join(output)))
    return pairs


def test_section_has_examples() -> None:
    found = examples(README.read_text())
    assert len(found) >= 10
    assert all(PLACEHOLDER in cmd for cmd, _ in found)


def test_readme_curl_examples_run_as_shown(tmp_path: Path) -> None:
    server = start_etcdpy(tmp_path)
    host = server.url.removeprefix("http://")
    try:
        for command, expected in examples(README.read_text()):
            run = command.replace(PLACEHOLDER, host)
            done = subprocess.run(["bash", "-c", run], capture_output=True, text=True, timeout=20)
            allowed = {0, CURL_TIMED_OUT} if " -m " in command else {0}
            assert done.returncode in allowed, (command, done.returncode, done.stderr)
            assert done.stdout.rstrip("\n") == expected.rstrip("\n"), command
    finally:
        server.stop()
