"""The shape of the code: no import cycles in the host package, an agent that imports
nothing of the host, and modules small enough to read.

The graph is read from the source with ast, not from a running interpreter, so an import
that only a function or an ``if TYPE_CHECKING:`` block makes counts as much as one at the
top: a cycle hidden in a function is still a cycle in the design. ``from pkg import name``
is an edge to ``pkg.name`` when that is a module, else to ``pkg``; a string constant that
names a module (``"edgeperf.links.local"`` or ``"edgeperf.links.local:open_profile"``, as a
registry of lazily imported modules holds them) is an edge too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST, AGENT = ROOT / "host", ROOT / "device_agent"
MAX_LINES = 400
# modules allowed over MAX_LINES, each with its reason
LONG_MODULES = {
    "models/tflite_schema.py": "generated table: the TFLite flatbuffer schema's field ids "
                               "and enums, one line each",
}
# what the agent must never import: it ships alone, as one zipapp
HOST_NAMES = ("edgeperf", "edgeperf_firmware", "host", "firmware_bridge")
_MODULE_STRING = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?")


def modules(root: Path, package: str) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, tree: ast.AST, known: set[str]) -> Iterator[str]:
    """Every module ``name`` (at ``path``) imports, as dotted names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in known else base
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and _MODULE_STRING.fullmatch(node.value):
            target = node.value.partition(":")[0]
            if target in known:
                yield target


def graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    known = set(mods)
    return {m: {t for t in imported(m, p, ast.parse(p.read_text(), str(p)), known)
                if t in known and t != m}
            for m, p in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def one_loop(comp: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, to show."""
    inside, start = set(comp), comp[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v] & inside):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return comp


def test_the_host_package_has_no_import_cycle():
    edges = graph(modules(HOST, "edgeperf"))
    found = cycles(edges)
    assert not found, "import cycles in host/ (a -> b: a imports b):\n" + "\n".join(
        f"  {' -> '.join(one_loop(c, edges))}   (all {len(c)}: {', '.join(c)})"
        for c in found)


def test_the_graph_reader_sees_every_kind_of_import():
    """The reader itself: a cycle made only by a function-level import, a TYPE_CHECKING
    import, a submodule named by ``from pkg import mod`` or a registry string is found."""
    edges = {"p.a": set(), "p.b": set(), "p.c": set(), "p": set()}
    sources = {
        "p.a": "def f():\n    from p import b\n",
        "p.b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import X\n",
        "p.c": "OPENERS = {'x': 'p.a:open_x'}\n",
    }
    for name, text in sources.items():
        path = Path(f"/{name.replace('.', '/')}.py")
        edges[name] = set(imported(name, path, ast.parse(text), set(edges))) & \
            (set(edges) - {name})
    assert edges == {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p": set()}
    assert cycles(edges) == [["p.a", "p.b", "p.c"]]
    assert one_loop(["p.a", "p.b", "p.c"], edges) == ["p.a", "p.b", "p.c", "p.a"]


def test_the_agent_imports_nothing_of_the_host():
    mods = modules(AGENT, "edgeperf_agent")
    bad = []
    for name, path in mods.items():
        for target in imported(name, path, ast.parse(path.read_text()), set(mods)):
            if target.split(".")[0] in HOST_NAMES:
                bad.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not bad, "device_agent ships alone; it must not import the host:\n  " + \
        "\n  ".join(bad)


def test_no_host_module_is_over_400_lines():
    long = []
    for path in sorted(HOST.rglob("*.py")):
        rel = path.relative_to(HOST).as_posix()
        n = len(path.read_text().splitlines())
        if n > MAX_LINES and rel not in LONG_MODULES:
            long.append(f"host/{rel}: {n} lines")
    assert not long, f"modules over {MAX_LINES} lines (split them by job):\n  " + \
        "\n  ".join(long)
    for rel in LONG_MODULES:
        assert (HOST / rel).is_file(), f"LONG_MODULES names host/{rel}, which is gone"
