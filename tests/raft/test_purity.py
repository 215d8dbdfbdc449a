"""The raft package must stay pure: no I/O, clocks, threads or global randomness.

Every module is parsed with `ast` and each import is checked against an allowlist, so
a stray `import time` or `from os import ...` fails the build instead of a review.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

RAFT_DIR = pathlib.Path(__file__).resolve().parents[2] / "raft"

ALLOWED_MODULES = {
    "dataclasses", "enum", "typing", "collections", "collections.abc", "bisect", "itertools", "math",
    "abc", "functools", "__future__",
}
# From `random` only the Random type may be used: a seeded instance comes in through Config.
ALLOWED_FROM = {"random": {"Random"}}


def _modules() -> list[pathlib.Path]:
    return sorted(RAFT_DIR.glob("*.py"))


def _violations(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                if name == "etcdpy.raft" or name.startswith("etcdpy.raft."):
                    continue
                if name == "random":
                    # `import random` is fine only to annotate/construct random.Random; forbid any
                    # other attribute use of the module (random.random(), random.seed(), ...).
                    for sub in ast.walk(tree):
                        if (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
                                and sub.value.id == "random" and sub.attr != "Random"):
                            bad.append(f"line {sub.lineno}: random.{sub.attr}")
                    continue
                if name not in ALLOWED_MODULES:
                    bad.append(f"line {node.lineno}: import {name}")
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level > 0 or mod == "etcdpy.raft" or mod.startswith("etcdpy.raft."):
                continue
            if mod in ALLOWED_FROM:
                extra = {a.name for a in node.names} - ALLOWED_FROM[mod]
                if extra:
                    bad.append(f"line {node.lineno}: from {mod} import {sorted(extra)}")
                continue
            if mod not in ALLOWED_MODULES:
                bad.append(f"line {node.lineno}: from {mod} import ...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("open", "print", "input", "__import__", "exec", "eval"):
                bad.append(f"line {node.lineno}: call to {node.func.id}()")
    return bad


def test_raft_package_has_modules() -> None:
    names = {p.stem for p in _modules()}
    for required in ("types", "errors", "config", "storage", "log", "log_unstable", "progress", "quorum",
                     "tracker", "confchange", "read_only", "raft", "rawnode", "describe"):
        assert required in names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_module_imports_are_pure(path: pathlib.Path) -> None:
    assert _violations(path) == [], f"{path.name} uses forbidden imports/calls"


def test_checker_catches_forbidden_imports(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom os import path\nimport random\nx = random.random()\nimport asyncio\n")
    v = _violations(bad)
    assert any("time" in s for s in v)
    assert any("os" in s for s in v)
    assert any("random.random" in s for s in v)
    assert any("asyncio" in s for s in v)


def test_every_module_has_a_docstring() -> None:
    for p in _modules():
        if p.name == "__init__.py":
            continue
        assert ast.get_docstring(ast.parse(p.read_text())), f"{p.name} lacks a module docstring"
