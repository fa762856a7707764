"""The import graph of `vsdpo/` and `kernels/`: every arrow points down the layers of
docs/architecture.md, and no two modules import each other, directly or round a loop.

Read from the source with `ast` (nothing is imported), so an import inside a function counts
as much as one at the top of a file: it is still a dependency a reader has to follow."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Bottom to top; a part may import its own layer and the layers below. `vsdpo` is the empty
# package root.
LAYERS = [
    {"kernels", "vsdpo"},
    {"vsdpo.render"},
    {"vsdpo.tasks"},
    {"vsdpo.feedback"},
    {"vsdpo.warmstart", "vsdpo.config"},
    {"vsdpo.model"},
    {"vsdpo.rollout"},
    {"vsdpo.train"},
    {"vsdpo.apps"},
    {"vsdpo.cli"},
]


def modules() -> dict[str, Path]:
    found = {}
    for root in ("vsdpo", "kernels"):
        for path in sorted((REPO / root).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `path` names: `from a.b import c` is `a.b.c` when that is a module,
    else `a.b` (its __init__)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports"
            found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known
                         else node.module for a in node.names)
    return {name for name in found if name in known}


def layer_of(module: str) -> int:
    part = module if module in ("vsdpo", "kernels") else ".".join(module.split(".")[:2])
    if part.startswith("kernels"):
        part = "kernels"
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return index
    raise AssertionError(f"{module}: its part is in no layer; add it to LAYERS and to "
                         "docs/architecture.md")


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def up_arrows(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in edges.items() for b in targets if layer_of(b) > layer_of(a)}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                on_stack.discard(w)
                component.append(w)
            on_stack.discard(v)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_part_has_a_layer():
    for name in modules():
        layer_of(name)


def test_imports_point_down_the_layers():
    assert up_arrows(graph()) == set()


def test_no_module_import_cycle():
    assert cycles(graph()) == []


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_a_loop(edges, expected):
    assert cycles(edges) == expected


def test_an_upward_import_is_caught():
    """The checker itself: render importing feedback is an up-arrow."""
    edges = {"vsdpo.render.html": {"vsdpo.feedback.credit"}, "vsdpo.feedback.credit": set()}
    assert up_arrows(edges) == {("vsdpo.render.html", "vsdpo.feedback.credit")}
