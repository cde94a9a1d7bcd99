"""The package's import graph: no circle, and every module imports only from the layers before it.

Imports inside functions count: a circle closed by a lazy import still ties two modules together
that cannot be understood (or loaded in either order) on their own. The layers are the tree's
architecture (README, "Design"): pure maths, nodes, the strategy registry, layers, models, then the
tools that use them.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "revsnn"

LAYERS = {
    # 0: maths and leaf helpers; the Triton kernels are the same maths on another backend
    "revsnn._version": 0, "revsnn.surrogate": 0, "revsnn.baselines": 0, "revsnn.functional": 0,
    "revsnn.kernels": 0,
    # 1: the node protocol and the nodes
    "revsnn.nodes": 1,
    # 2: the strategy registry (builds nodes)
    "revsnn.strategy": 2,
    # 3: layers of nodes
    "revsnn.layers": 3,
    # 4: networks and what they are trained on
    "revsnn.models": 4, "revsnn.data": 4, "revsnn.temporal": 4,
    # 5: measuring and exporting
    "revsnn.analysis": 5, "revsnn.export": 5, "revsnn.conversion": 5,
    # 6: training and the benchmarks
    "revsnn.training": 6, "revsnn.bench": 6,
    # 7: the command line and the package's front door
    "revsnn.cli": 7, "revsnn": 8, "revsnn.__main__": 8,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def layer(name: str) -> int:
    best = max((k for k in LAYERS if name == k or name.startswith(k + ".")), key=len)
    return LAYERS[best]


def graph() -> dict:
    """module -> set of revsnn modules it imports (anywhere in the file)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names if a.name.split(".")[0] == "revsnn"}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package_of(path).split(".")
                    base = base[:len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if mod.split(".")[0] != "revsnn":
                    continue
                for a in node.names:       # `from pkg import module` imports that module
                    out.add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in files else mod)
        edges[name] = {m for m in out if m in files and m != name}
    return edges


def cycles(edges: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    edges = graph()
    assert "revsnn.nodes.reversible" in edges["revsnn.layers.bn_node"]
    assert "revsnn.strategy" in edges["revsnn.models"]


def test_no_import_circle():
    assert cycles(graph()) == []


def test_a_circle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_imports_downward_only():
    edges = graph()
    bad = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
           for m, targets in sorted(edges.items()) for t in sorted(targets)
           if layer(t) > layer(m)]
    assert bad == []
