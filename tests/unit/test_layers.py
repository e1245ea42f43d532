"""The package layout is a stack: no module imports from a layer above its own, and no
modules import each other in a loop (also through imports inside functions).

Layers, bottom to top (DESIGN.md, "Layout"): core; serving infrastructure; ingest,
operations and KPI maths; export and reports; boards; the command line on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "metrics", "dashboards")
LAYERS: tuple[tuple[str, ...], ...] = (
    ("pipeline.core",),
    ("pipeline.serve",),
    ("pipeline.ingest", "pipeline.ops", "metrics.kpi"),
    ("metrics.export", "metrics.reports"),
    ("dashboards",),
    ("pipeline.cli",),
)


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), level)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Our modules that ``path`` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            # the longest known module the name starts with (``from pkg import mod`` names a module)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and layer_of(target) is not None:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, name, known) for name, path in modules.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in graph.items():
        level = layer_of(source)
        for target in targets:
            target_level = layer_of(target)
            if level is not None and target_level is not None and target_level > level:
                bad.append(f"{source} (layer {level}) imports {target} (layer {target_level})")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer() -> None:
    missing = [m for m in project_modules() if layer_of(m) is None and m not in PACKAGES]
    assert missing == []


def test_no_import_runs_up_the_stack() -> None:
    assert upward_imports(import_graph()) == []


def test_no_import_loop() -> None:
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"pipeline.core.a": {"pipeline.cli.main"}, "pipeline.cli.main": set()}, 1),
        ({"metrics.kpi.x": {"metrics.export.y"}, "metrics.export.y": {"metrics.kpi.x"}}, 1),
        ({"pipeline.cli.main": {"pipeline.core.a"}, "pipeline.core.a": set()}, 0),
    ],
)
def test_the_checks_catch_a_violation(graph: dict[str, set[str]], expected: int) -> None:
    assert len(upward_imports(graph)) == expected


def test_the_loop_check_catches_a_loop() -> None:
    graph = {"pipeline.core.a": {"pipeline.core.b"}, "pipeline.core.b": {"pipeline.core.a"}, "pipeline.core.c": set()}
    assert cycles(graph) == [["pipeline.core.a", "pipeline.core.b"]]


def test_imports_are_read_inside_functions_too(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from pipeline.cli import main\n")
    found = imports_of(source, "pipeline.core.mod", {"pipeline.cli", "pipeline.cli.main"})
    assert found == {"pipeline.cli", "pipeline.cli.main"}
