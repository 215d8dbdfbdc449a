"""The architecture's dependency rules, checked on the source: rooms import one way and nothing circles.

`etcdpy.raft` imports nothing of ours; `etcdpy.storage` nothing but itself; `etcdpy.app` may use both,
never the reverse. Inside `app`, the gateway may use the server and peer rooms, the server may use the
peer room, and the peer room neither; the front workers' room sits above the gateway, and the worker
process's own module loads none of the server. Every import counts, those under `TYPE_CHECKING` too: a circle
there is still a circle in the design (a lower layer names what it needs as a Protocol instead).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"etcdpy.app": "app", "etcdpy.raft": "raft", "etcdpy.storage": "storage", "etcdpy.bench": "bench"}

# package prefix -> prefixes it must never import
FORBIDDEN = {
    "etcdpy.raft": ("etcdpy.storage", "etcdpy.app", "etcdpy.bench"),
    "etcdpy.storage": ("etcdpy.raft", "etcdpy.app", "etcdpy.bench"),
    "etcdpy.app": ("etcdpy.bench",),
    "etcdpy.app.peer": ("etcdpy.app.server", "etcdpy.app.gateway", "etcdpy.app.ctl", "etcdpy.app.front"),
    "etcdpy.app.server": ("etcdpy.app.gateway", "etcdpy.app.ctl", "etcdpy.app.front"),
    "etcdpy.app.gateway": ("etcdpy.app.ctl", "etcdpy.app.front"),
    "etcdpy.app.front": ("etcdpy.app.ctl",),
    # A worker process starts in tens of milliseconds because it never loads the server: only the
    # frame format, the codec and the interpreter settings.
    "etcdpy.app.front.worker": ("etcdpy.app.server", "etcdpy.app.peer", "etcdpy.app.front.bridge",
                                "etcdpy.app.front.pool", "etcdpy.app.gateway.dispatch",
                                "etcdpy.app.gateway.asgi", "etcdpy.raft"),
    "etcdpy.app.ctl": ("etcdpy.app.server", "etcdpy.app.gateway", "etcdpy.app.peer", "etcdpy.raft",
                       "etcdpy.storage"),
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path) -> set[str]:
    """Our modules that `module` imports (a `from pkg import sub` of a submodule counts as `pkg.sub`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("etcdpy.") and name in MODULES:
                found.add(name)
            elif name.startswith("etcdpy."):
                # an imported symbol of a module: keep the module part
                while name and name not in MODULES:
                    name = name.rpartition(".")[0]
                if name:
                    found.add(name)
    found.discard(module)
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def test_rooms_import_one_way() -> None:
    bad = []
    for module, deps in GRAPH.items():
        for prefix, banned in FORBIDDEN.items():
            if module == prefix or module.startswith(prefix + "."):
                bad += [f"{module} -> {d}" for d in deps for b in banned if d == b or d.startswith(b + ".")]
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(set(bad)))


def test_no_import_circles() -> None:
    # Tarjan's strongly connected components; a component of more than one module is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            # a package's __init__ is imported with any submodule; only real edges count
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_every_package_folder_is_installed() -> None:
    """A new room (a folder with __init__.py) must be listed in pyproject.toml, or the wheel lacks it."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    assert packages <= listed, f"package folders missing from pyproject.toml: {sorted(packages - listed)}"


def test_the_graph_sees_real_edges() -> None:
    # Guards the checker itself: a rule that matched nothing would pass vacuously.
    assert "etcdpy.storage.mvcc" in GRAPH["etcdpy.app.server.etcd_server"]
    assert "etcdpy.raft" in GRAPH["etcdpy.app.server.raft_node"]


def test_starting_a_member_loads_neither_fastapi_nor_jwt() -> None:
    """A restart is mostly imports: the member serves `/v3/` without FastAPI/pydantic (built on the
    first other request) and without PyJWT (only `--auth-token jwt,...` needs it)."""
    code = ("import sys, etcdpy.app.cli, etcdpy.app.front.worker; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'pydantic', 'jwt'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
