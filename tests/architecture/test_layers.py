"""The package's shape, enforced: layers import only downward, and no import cycle inside pgrun.

Every `import` / `from ... import` in pgrun (function-level ones included) is read with `ast`;
an edge goes to the module imported (`from pgrun.lab import gradients` -> pgrun.lab.gradients).
The layers, bottom first, are those of docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pgrun"

# bottom first, each layer one or more module prefixes; a module may import its own layer and
# the ones listed before it (pgrun.diagnose: `python -m pgrun.diagnose`, the lab's old path; pgrun.tune:
# `pgrun-tune`, a command line beside cli.py)
LAYERS = [("pgrun.errors",), ("pgrun.core",), ("pgrun.envs",), ("pgrun.config",), ("pgrun.rollout",),
          ("pgrun.train",), ("pgrun.runner",), ("pgrun.lab", "pgrun.diagnose"), ("pgrun.report",),
          ("pgrun.cli", "pgrun.tune")]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: the pgrun modules it imports anywhere in its source}."""
    sources = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in sources.items():
        is_package = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.split(".")[0] == "pgrun"}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    anchor = mod.split(".") if is_package else mod.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                if base.split(".")[0] != "pgrun":
                    continue
                for a in node.names:
                    deps.add(f"{base}.{a.name}" if f"{base}.{a.name}" in sources else base)
        graph[mod] = deps - {mod}
    return graph


def layer_of(module: str, layers: list[tuple[str, ...]] = LAYERS) -> int | None:
    """Index of the layer that owns `module` (None: the root `pgrun` package, importable from all)."""
    for i, prefixes in enumerate(layers):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def upward_imports(graph: dict[str, set[str]], layers: list[tuple[str, ...]] = LAYERS) -> list[str]:
    out = []
    for mod, deps in sorted(graph.items()):
        here = layer_of(mod, layers)
        for dep in sorted(deps):
            there = layer_of(dep, layers)
            if there is not None and (here is None or there > here):
                out.append(f"{mod} ({layers[here][0] if here is not None else 'pgrun'}) imports {dep} "
                           f"({layers[there][0]}), a layer above it")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_is_in_a_layer():
    unplaced = [m for m in import_graph() if m != "pgrun" and layer_of(m) is None]
    assert not unplaced, f"modules outside the layers of docs/architecture.md: {unplaced}"


def test_layers_import_only_downward():
    assert upward_imports(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


CORE_MAY_IMPORT = ("__future__", "typing", "functools", "jax", "numpy", "flax", "gymnasium.spaces", "pgrun.core",
                   "pgrun.errors")


def test_core_is_pure_math():
    """core/ imports only JAX, NumPy, Flax, gymnasium's spaces and itself (no config, Hydra, envs,
    os or files; relative imports resolved) and calls no open() or print()."""
    for path in (PACKAGE / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [f"{node.module}.{a.name}" for a in node.names]  # from jax import lax -> jax.lax
            else:
                names = []
            for n in names:
                assert any(n == m or n.startswith(m + ".") for m in CORE_MAY_IMPORT), f"{path.name} imports {n}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("open", "print"), f"{path.name} calls {node.func.id}()"
    for mod, deps in import_graph().items():  # relative imports too, resolved
        if mod.startswith("pgrun.core"):
            assert all(layer_of(d) in (0, 1) for d in deps), (mod, deps)


# The checks themselves, on small graphs with known answers (so they can fail).

def test_checks_find_a_cycle_and_an_upward_import():
    graph = {"pgrun.core.a": {"pgrun.core.b"}, "pgrun.core.b": {"pgrun.core.c"},
             "pgrun.core.c": {"pgrun.core.a"}, "pgrun.train.x": {"pgrun.core.a"},
             "pgrun.envs.y": {"pgrun.train.x"}}
    assert cycles(graph) == [["pgrun.core.a", "pgrun.core.b", "pgrun.core.c"]]
    assert upward_imports(graph) == [
        "pgrun.envs.y (pgrun.envs) imports pgrun.train.x (pgrun.train), a layer above it"]


def test_import_graph_reads_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "pgrun"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from pgrun.train import b\n")
    (pkg / "core" / "c.py").write_text("from . import a\nfrom .a import f\n")
    (pkg / "train").mkdir()
    (pkg / "train" / "__init__.py").write_text("")
    (pkg / "train" / "b.py").write_text("import pgrun.core.c\n")
    (pkg / "train" / "d.py").write_text("import pgrun.core.a as z\nfrom pgrun import core\nfrom pgrun.core import c\n")
    graph = import_graph(pkg)
    assert graph["pgrun.core.a"] == {"pgrun.train.b"}
    assert graph["pgrun.core.c"] == {"pgrun.core.a"}
    assert graph["pgrun.train.b"] == {"pgrun.core.c"}
    assert graph["pgrun.train.d"] == {"pgrun.core.a", "pgrun.core", "pgrun.core.c"}
    assert cycles(graph) == [["pgrun.core.a", "pgrun.core.c", "pgrun.train.b"]]


@pytest.mark.parametrize("module, layer", [("pgrun.errors", 0), ("pgrun.core.returns", 1), ("pgrun.cli", 9),
                                           ("pgrun.tune", 9), ("pgrun.report.plot", 8), ("pgrun.diagnose", 7),
                                           ("pgrun", None), ("pgrun.corex", None)])
def test_layer_of(module, layer):
    assert layer_of(module) == layer
