"""The layout issue 12 asks for: no import cycles, commands registered explicitly, front ends thin."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PKG = ROOT / "vramplan"
# (planner.py <-> planner_v0.py was split: the plan value lives in plan.py, the weights note in rules/weights_note.py)
KNOWN: list[set[str]] = []


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Every vramplan module ``name`` imports, at module level or inside functions (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    skip = {id(s) for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
            for s in ast.walk(n)}
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    deps = set()
    for n in ast.walk(tree):
        if id(n) in skip or not isinstance(n, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(n, ast.Import):
            targets = [a.name for a in n.names]
        else:
            mod = ".".join(base[:len(base) - n.level + 1] + ([n.module] if n.module else [])) if n.level else n.module
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in n.names]
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name:
                deps.add(t)
    return deps


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    mods = _modules()
    graph = {m: _imports(m, p, mods) for m, p in mods.items()}
    assert [c for c in _cycles(graph) if c not in KNOWN] == []


def test_front_ends_import_no_planning_internals():
    # the CLI calls the API and the renderers; the renderers import no domain module at run time
    mods = _modules()
    for name, path in mods.items():
        deps = _imports(name, path, mods)
        if name.startswith("vramplan.cli"):
            assert not deps & {"vramplan.engines.vllm.planner", "vramplan.engines.vllm.fixes", "vramplan.fit", "vramplan.explain"}, name
        if name.startswith("vramplan.render"):
            allowed = ("vramplan.render", "vramplan.units", "vramplan.errors")
            assert not {d for d in deps if not d.startswith(allowed)}, name


def test_commands_are_registered_explicitly():
    text = "".join(p.read_text() for p in (PKG / "cli").glob("*.py"))
    assert "__import__" not in text and "except ImportError" not in text
