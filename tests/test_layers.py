"""The package's folders are its layers: imports point down only, and no import cycle exists.

Every import counts, the ones inside functions and under ``TYPE_CHECKING`` included: a lazy import that
runs back up a layer is still a cycle. The layers, top to bottom (a module may import its own folder
and the ones it lists):

- ``dsconv_cli`` (the facade) and ``api``: anything below;
- ``cli/``: ``run/``, ``present/``, ``core/``, the leaves;
- ``run/``: ``pt/``, ``core/``, the leaves; never prints;
- ``present/``: ``core/``'s records and helpers (never its counting), the leaves; never torch;
- ``pt/``: ``core/``, the leaves; the only folder that imports torch or fvcore;
- ``core/``: the leaves; standard library and PyYAML (pydantic for the config file's schema) only;
- the leaves ``errors``, ``files``, ``version``: each other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dsconv_cli"
LEAVES = {"errors", "files", "version"}
ALLOWED = {
    "": {"api", "facade", "leaf", "core", "pt", "run", "present", "cli"},
    "api": {"leaf", "core", "run", "present", "pt"},  # the facade: lazy imports of every layer
    "cli": {"cli", "run", "present", "core", "leaf"},
    "run": {"run", "pt", "core", "leaf"},
    "present": {"present", "core", "leaf"},
    "pt": {"pt", "core", "leaf"},
    "core": {"core", "leaf"},
    "leaf": {"leaf"},
}
NEVER_RENDERED_FROM = {"core.counting", "core.kinds", "core.evaluate", "core.blocks"}  # rendering never recounts
TORCH = {"torch", "fvcore"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(package modules, outside top-level packages) that ``path`` imports anywhere in its body."""
    inside: set[str] = set()
    outside: set[str] = set()
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            found = [n for n in names if n in modules]
            if found:
                inside.update(found)
                if len(found) < len(names) and target in modules:
                    inside.add(target)
            elif target in modules:
                inside.add(target)
            else:
                outside.add(target.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                (inside if alias.name in modules else outside).add(alias.name.split(".")[0])
    inside.discard(me)
    return inside, outside


def layer_of(module: str) -> str:
    rest = module.removeprefix("dsconv_cli").removeprefix(".")
    if rest in ("", "__main__"):
        return ""
    top = rest.split(".")[0]
    if top in LEAVES:
        return "leaf"
    return top


GRAPH = {m: imports_of(p, all_modules()) for m, p in all_modules().items()}


def test_every_module_is_in_a_layer() -> None:
    layers = {layer_of(m) for m in GRAPH}
    assert layers <= set(ALLOWED), layers - set(ALLOWED)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module: str) -> None:
    inside, outside = GRAPH[module]
    layer = layer_of(module)
    allowed = ALLOWED[layer]
    wrong = {m for m in inside if layer_of(m) not in allowed and not (layer == "" and m == "dsconv_cli.api")}
    assert not wrong, f"{module} ({layer or 'facade'}) imports {sorted(wrong)} from a layer above or beside it"
    if layer != "pt":
        assert not outside & TORCH, f"{module} imports {sorted(outside & TORCH)}: only dsconv_cli/pt/ may"
    if layer == "present":
        recount = {m for m in inside if m.removeprefix("dsconv_cli.") in NEVER_RENDERED_FROM}
        assert not recount, f"{module} renders from {sorted(recount)}: rendering reads records, never counts"


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components over every import, lazy ones included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v][0]:
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
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_graph_sees_lazy_imports() -> None:
    """The checker itself: an import inside a function is an edge."""
    source = "def f():\n    from dsconv_cli.core import spec\n"
    path = PACKAGE / "core" / "__init__.py"
    tree_inside = {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)}
    assert tree_inside == {"dsconv_cli.core"} and path.exists()
    assert "dsconv_cli.core.spec" in GRAPH["dsconv_cli.core.parse"][0]


@pytest.mark.parametrize("folder", ["core", "present", "run", "cli"])
def test_importing_a_folder_leaves_torch_unloaded(folder: str) -> None:
    modules = [m for m in GRAPH if layer_of(m) == folder]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print(sorted(TORCH & set(sys.modules)))"
    code = code.replace("TORCH", repr(TORCH))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"importing dsconv_cli/{folder}/ loaded {out.strip()}"
