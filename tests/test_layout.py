"""The package's shape, read from its source: imports among traitlens modules, counted wherever
they stand (inside functions too, where a circle used to hide), form no circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "traitlens"


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the traitlens modules it imports (a package's own ancestors left out)."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                found.append(sorted([v, *group]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_circles_are_found():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back():
    assert circles(import_graph()) == []


# The floors of the house, lowest first: a module imports only from its own floor or below.
FLOORS = (
    ("errors", "_io", "chat", "plotting", "data", "paired"),  # base: errors, files, chat, figures, data, paired tests
    ("instrument", "memo"),  # the questionnaire's data and rules; the scoring memo and its store
    ("accel",),  # the speed wing: plain torch modules and token ids, nothing else
    ("models",),  # loading a model (and its opt-in precision)
    ("steering", "options"),  # the primitive: vector, injection, kernels, artifacts; run options
    ("generation", "perplexity_guard"),
    ("assess",),
    ("probe", "bench"),
    ("null", "edit"),  # the random-direction null; the edit experiment (recipes, frontier, calibration, report)
    ("study", "reverse", "align", "serve"),
    ("cli",),
)


def _floor(module: str) -> int | None:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else None
    return next((k for k, names in enumerate(FLOORS) if top in names), None)


def test_every_package_has_a_floor_and_imports_only_downward():
    graph = import_graph()
    unplaced = sorted({m.split(".")[1] for m in graph if "." in m and _floor(m) is None})
    assert unplaced == []
    upward = [
        f"{m} -> {t}" for m, targets in graph.items() if "." in m for t in targets if "." in t and _floor(t) > _floor(m)
    ]
    assert upward == []


def test_no_ambient_state_decides_a_result():
    """No ContextVar, no ``global`` rebinding, no module whose class is swapped at run time."""
    found = []
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            name = path.relative_to(ROOT)
            if isinstance(node, ast.Global):
                found.append(f"{name}: global {', '.join(node.names)}")
            elif isinstance(node, ast.Name) and node.id == "ContextVar":
                found.append(f"{name}: ContextVar")
            elif isinstance(node, ast.Attribute) and node.attr == "ContextVar":
                found.append(f"{name}: ContextVar")
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "__class__" for t in node.targets
            ):
                found.append(f"{name}: __class__ assignment")
    assert found == []
