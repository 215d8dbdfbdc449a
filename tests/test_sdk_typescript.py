"""A TypeScript client generated from openapi/openapi.json, from Node, against a live etcdpy:
sdk/typescript installs openapi-typescript, openapi-fetch and typescript from the npm registry (pinned
by its package-lock.json), generates the types, type-checks and compiles example.ts (a wrong
description of a field fails here), and runs it: a put and a range, and an error decoded as Status."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.servers import start_etcdpy

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "sdk" / "typescript"
SPEC = ROOT / "openapi" / "openapi.json"
FILES = ("package.json", "package-lock.json", "tsconfig.json", "example.ts")


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_typescript_client_puts_and_ranges_from_node(tmp_path: Path) -> None:
    work = tmp_path / "ts"
    work.mkdir()
    for name in FILES:
        shutil.copy(SDK / name, work / name)
    _run(["npm", "ci", "--no-audit", "--no-fund"], work)
    _run(["npx", "openapi-typescript", str(SPEC), "-o", "etcdpy.d.ts"], work)
    _run(["npx", "tsc", "-p", "."], work)
    server = start_etcdpy(tmp_path / "server")
    try:
        out = json.loads(_run(["node", "dist/example.js", server.url], work, timeout=60))
    finally:
        server.stop()
    assert out["count"] == "1"
    assert out["kvs"] == [{"key": "ts/greeting", "value": "hello from node", "mod_revision": out["revision"]}]
    assert out["error"] == {"error": "etcdserver: mvcc: required revision is a future revision",
                            "message": "etcdserver: mvcc: required revision is a future revision", "code": 11}
