"""Golden interaction traces: scripted scenarios whose full output is checked in.

Each file in testdata/ is a sequence of commands, each followed by the output the
InteractionEnv printed (every Ready, every delivered message). A behaviour change
shows up as a readable diff. Regenerate after an intended change with:

    UPDATE_GOLDEN=1 pytest tests/raft/test_interaction.py
"""

from __future__ import annotations

import difflib
import os
import pathlib

import pytest

from tests.raft.interaction import InteractionEnv, parse_script, render_script

TESTDATA = pathlib.Path(__file__).parent / "testdata"


def _comments(text: str) -> dict[int, list[str]]:
    """Comment lines, keyed by the index of the command block they precede."""
    out: dict[int, list[str]] = {}
    pending: list[str] = []
    block = 0
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            pending.append(line)
        elif line.strip() and i + 1 < len(lines) and lines[i + 1] == "----":
            out[block] = pending
            pending = []
            block += 1
            i += 2
            while i < len(lines) and lines[i] != "":
                i += 1
        i += 1
    return out


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.txt")), ids=lambda p: p.stem)
def test_trace(path: pathlib.Path) -> None:
    text = path.read_text()
    blocks = parse_script(text)
    env = InteractionEnv()
    results = [(cmd, args, env.run(cmd, args)) for cmd, args, _ in blocks]
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(render_script(results, _comments(text)))
        return
    for (cmd, args, want), (_, _, got) in zip(blocks, results, strict=True):
        if want != got:
            diff = "\n".join(difflib.unified_diff(want.split("\n"), got.split("\n"), "expected", "got",
                                                  lineterm=""))
            pytest.fail(f"{path.name}: output of `{cmd} {' '.join(args)}` differs "
                        f"(UPDATE_GOLDEN=1 to accept):\n{diff}")


def test_there_are_enough_traces() -> None:
    assert len(list(TESTDATA.glob("*.txt"))) >= 6
