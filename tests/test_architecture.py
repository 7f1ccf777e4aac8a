"""The house matches docs/architecture.md: no import cycles, and no layer imports a higher one.

Every ``import`` counts: at the top of a module, inside a function, and under
``if TYPE_CHECKING:`` (a loop hidden there is still a loop a reader has to untangle).
``from imagetrail.web import api`` imports the module ``imagetrail.web.api``;
``from imagetrail.web import create_app`` imports the package ``imagetrail.web``.
Importing a submodule does not count as importing the packages above it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import imagetrail

LAYERS: tuple[tuple[str, ...], ...] = (
    # the ground floor: types, errors and small helpers (they may import each other)
    (
        "imagetrail",  # the package root: __version__ and ImagetrailError
        "model",
        "errors",
        "timeutil",
        "imageref",
        "settings",
        "redact",
        "budget",
        "fileio",
        "names",
        "text",
        "scope",
    ),
    ("analysis",),  # pure functions over spans and changes
    ("sources", "ledger", "sim"),  # where data comes from and is kept
    ("service",),  # the answers: query, sync, impact, deployments, demo, shapes
    ("grafana", "report", "rules"),  # what is made from the answers
    ("cli", "web", "__main__"),  # the two front doors
)
"""Lowest first: a module may import its own layer and the layers below, never above."""

PACKAGE = "imagetrail"


def layer_of(module: str, layers: Sequence[Sequence[str]] = LAYERS) -> int | None:
    """The layer index of ``module`` (``imagetrail.ledger.store`` → the layer of ``ledger``)."""
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else parts[0]
    for i, names in enumerate(layers):
        if key in names:
            return i
    return None


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package at ``root`` by dotted name (a package by its own name)."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("").parts
        if rel[-1] == "__init__":
            rel = rel[:-1]
        out[".".join((package, *rel))] = path
    return out


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _known(name: str, modules: Mapping[str, Path]) -> str | None:
    """``name`` or the longest dotted prefix of it that is a module of the package."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: Mapping[str, Path], package: str) -> set[str]:
    """The package's modules that ``module`` imports, wherever in the file it does."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            names = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # ``from pkg import mod`` imports the module; ``from pkg import name``, pkg
                names.append(sub if alias.name != "*" and sub in modules else base)
        else:
            continue
        for name in names:
            if name == package or name.startswith(package + "."):
                found = _known(name, modules)
                if found is not None and found != module:
                    out.add(found)
    return out


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the package's modules it imports."""
    modules = module_files(root, package)
    return {m: imports_of(m, p, modules, package) for m, p in modules.items()}


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def a_cycle(graph: Mapping[str, set[str]], component: Sequence[str]) -> list[str]:
    """One shortest loop through the component's first module: ``[a, b, ..., a]``."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start] * 2
                if child not in came_from:
                    came_from[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{component} is not a loop")


def cycles(graph: Mapping[str, set[str]]) -> list[str]:
    """Every import loop, each drawn as ``a → b → a`` with all the modules caught in it."""
    out = []
    for component in strongly_connected(graph):
        if len(component) > 1:
            loop = " → ".join(a_cycle(graph, component))
            out.append(f"{loop}   (all of: {', '.join(component)})")
    return out


def upward_imports(
    graph: Mapping[str, set[str]], layers: Sequence[Sequence[str]] = LAYERS
) -> list[str]:
    """Every import of a higher layer, and every module the layer map does not place."""
    out = []
    for module in sorted(graph):
        mine = layer_of(module, layers)
        if mine is None:
            out.append(f"{module} is in no layer: add it to LAYERS in tests/test_architecture.py")
            continue
        for target in sorted(graph[module]):
            theirs = layer_of(target, layers)
            if theirs is not None and theirs > mine:
                out.append(f"{module} (layer {mine}) imports {target} (layer {theirs})")
    return out


def _graph() -> dict[str, set[str]]:
    return import_graph(Path(imagetrail.__file__).parent, PACKAGE)


def test_the_walker_sees_the_package() -> None:
    graph = _graph()
    # A walker that finds nothing would pass everything below.
    assert len(graph) > 80
    assert sum(len(t) for t in graph.values()) > 300
    assert "imagetrail.errors" in graph["imagetrail.model"]
    assert "imagetrail.web.api" in graph["imagetrail.web.app"]  # from imagetrail.web import api


def test_no_import_cycles() -> None:
    found = cycles(_graph())
    assert not found, "import loops:\n" + "\n".join(found)


def test_no_layer_imports_a_higher_one() -> None:
    found = upward_imports(_graph())
    assert not found, "imports against the layers of docs/architecture.md:\n" + "\n".join(found)


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_walker_finds_hidden_imports(tmp_path: Path) -> None:
    _write(
        tmp_path / "fake",
        {
            "__init__.py": "",
            "low.py": (
                "from __future__ import annotations\n"
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from fake.high import Thing\n"
            ),
            "high.py": "def f():\n    from . import low\n    return low\n\nclass Thing: ...\n",
            "pkg/__init__.py": "from fake.pkg.inner import x\n",
            "pkg/inner.py": "x = 1\n",
            "pkg/user.py": "import fake.low\nfrom .. import high\nfrom fake.pkg import x\n",
            "alone.py": "import os\nfrom fake import pkg\n",
        },
    )
    graph = import_graph(tmp_path / "fake", "fake")
    assert graph["fake.low"] == {"fake.high"}  # under TYPE_CHECKING
    assert graph["fake.high"] == {"fake.low"}  # function-local and relative
    assert graph["fake.pkg.user"] == {"fake.low", "fake.high", "fake.pkg"}
    assert graph["fake.alone"] == {"fake.pkg"}  # a package imported by name is its __init__
    found = cycles(graph)
    assert found == ["fake.high → fake.low → fake.high   (all of: fake.high, fake.low)"]

    layers = (("fake",), ("low",), ("high", "pkg"))
    found = upward_imports(graph, layers)
    assert "fake.low (layer 1) imports fake.high (layer 2)" in found
    assert "fake.alone is in no layer: add it to LAYERS in tests/test_architecture.py" in found
    assert not any(line.startswith("fake.high ") for line in found)


def test_a_longer_loop_is_named_in_order() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert cycles(graph) == ["a → b → c → a   (all of: a, b, c)"]
