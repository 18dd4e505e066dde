"""The package's shape (docs/ARCHITECTURE.md): no import cycles between slamlm modules
(function-level imports included), and lower layers never import higher ones."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "slamlm"

# layer of each top-level package/module (docs/ARCHITECTURE.md); a module may import its own
# layer or lower ones
LAYERS = {"config": 1, "io": 1, "audio": 1, "vocab": 1, "device": 1, "cli_adapter": 1, "schedule": 1,
          "corpora": 1.5, "data": 2, "units": 2, "synth": 2, "words": 2, "model": 3, "interleave": 3.5, "train": 4, "align": 5, "eval": 6,
          "generate": 6, "vocoder": 6, "report": 7, "cli": 7, "demo": 7, "__main__": 7, "__init__": 1}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """slamlm modules imported anywhere in ``path`` (top level or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("slamlm"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}  # from pkg import module
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("slamlm")}
    return out


def graph() -> dict[str, set[str]]:
    mods = {module_name(p): p for p in SRC.rglob("*.py")}
    g = {}
    for name, path in mods.items():
        deps = set()
        for imp in imports(path):
            if imp.rpartition(".")[0] in mods and imp not in mods:
                continue  # "from slamlm.x import name": the name is not a module
            while imp and imp not in mods:  # "from slamlm.model import X" -> slamlm.model
                imp = imp.rpartition(".")[0]
            if imp and imp != name and imp != "slamlm":
                deps.add(imp)
        g[name] = deps
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
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

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def layer(mod: str) -> int:
    parts = mod.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def test_no_import_cycles():
    assert cycles(graph()) == []
    assert len(graph()) > 60  # the scan sees the package


def test_lower_layers_do_not_import_higher_ones():
    bad = [(m, d) for m, deps in graph().items() for d in deps if layer(d) > layer(m)]
    assert bad == []
