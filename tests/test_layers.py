"""The package's layers point one way: no module imports from a layer above its own, and no two
modules import each other, directly or around a loop (imports inside functions count too;
``if TYPE_CHECKING:`` blocks do not, they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: lowest first; a module may import its own layer and the layers before it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "leaf",
        (
            "crest.errors",
            "crest.safe_load",
            "crest.atomic",
            "crest.paths",
            "crest.version",
            "crest.cpu_allocator",
            "crest.device",
            "crest.settings",
            "crest.config",
            "crest.evidential",
            "crest.calibration",
            "crest.metrics",
            "crest.opinion",
            "crest.class_files",
            "crest.regions",
            "crest.run_folder",
            "crest.run_lock",
            "crest.markdown",
        ),
    ),
    ("data", ("crest.data",)),
    # the loss terms models share, then the models (each with its own total loss)
    ("losses", ("crest.losses",)),
    ("models", ("crest.models",)),
    (
        "engine",
        ("crest.engine", "crest.baseline", "crest.experiments", "crest.compare", "crest.tune"),
    ),
    ("apps", ("crest.explain", "crest.perf", "crest.predict", "crest.stats")),
    ("cli", ("crest.cli", "crest.__main__")),
]


def _modules() -> dict[str, Path]:
    mods = {}
    for path in (SRC / "crest").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)

    Visitor().visit(ast.parse(path.read_text()))
    return {m for m in found if m in MODULES}


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "crest"))
def test_no_upward_import(module: str) -> None:
    # the package root only re-exports the API lazily; it is above everything
    upward = [
        f"{dep} ({LAYERS[_layer(dep)][0]})"
        for dep in GRAPH[module]
        if dep != "crest" and _layer(dep) > _layer(module)
    ]
    assert not upward, f"{module} ({LAYERS[_layer(module)][0]}) imports from above: {upward}"


def test_no_import_loop() -> None:
    graph = {m: {d for d in deps if d != "crest"} for m, deps in GRAPH.items()}
    # a module's package __init__ is imported with it: that edge is not a loop
    for m in graph:
        graph[m] = {d for d in graph[m] if not m.startswith(d + ".")}
    state: dict[str, int] = {}
    loops: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                loops.append([*stack[stack.index(dep) :], dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not loops, f"import loops: {loops[:3]}"


def test_no_data_module_over_400_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in (SRC / "crest" / "data").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, long


def test_the_cli_entry_imports_no_torch_before_its_run_folder_check() -> None:
    # `crest train --out BUSY` must fail at once: the lock check runs before the heavy imports
    import subprocess
    import sys

    code = "import sys, crest.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
