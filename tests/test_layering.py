"""The import structure (docs/architecture.md): no import cycle in ``sweeps/``, even through imports
inside functions; ``practices/`` is plain PyTorch; Optuna's private modules are reached from one
isolated module only."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Optuna 5 has no public heartbeat base class; the journal storage's heartbeat uses the private one
# and pins its behaviour in tests/sweeps/test_journal.py.
PRIVATE_OPTUNA_ALLOWED = {"sweeps/storage/_journal.py"}
FOREIGN_TO_PRACTICES = ("optuna", "optuna_dashboard", "hydra", "omegaconf", "sweeps")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports at run time (top level or inside functions), not those under
    ``if TYPE_CHECKING:``; ``from a import b`` counts as ``a.b`` too, where that is a module."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _graph(package: str) -> dict[str, set[str]]:
    modules = {_module(p): p for p in (ROOT / package).rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name and m != package}
            for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
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
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_layering_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_layering_reads_imports_inside_functions_but_not_type_checking(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x.hidden\n"
                    "def f():\n    from y import z\n")
    assert _imports(path) == ["typing", "typing.TYPE_CHECKING", "y", "y.z"]


@pytest.mark.parametrize("package", ["sweeps", "practices", "benchmarks"])
def test_layering_no_import_cycles(package):
    assert _cycles(_graph(package)) == []


def test_layering_practices_is_plain_pytorch():
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / "practices").rglob("*.py")
                 for m in _imports(p) if m.split(".")[0] in FOREIGN_TO_PRACTICES]
    assert offenders == []


def test_layering_private_optuna_modules_only_in_the_isolated_module():
    offenders = []
    for package in ("sweeps", "practices", "benchmarks", "scripts"):
        for path in (ROOT / package).rglob("*.py"):
            where = str(path.relative_to(ROOT))
            private = sorted({m for m in _imports(path) if m.split(".")[0] == "optuna"
                              and any(part.startswith("_") for part in m.split(".")[1:])})
            if private and where not in PRIVATE_OPTUNA_ALLOWED:
                offenders.append(f"{where}: {private}")
    assert offenders == []


# sweeps' sub-packages from the bottom up (docs/architecture.md): each imports only those before it.
# The package's own top-level modules are the shared base (errors, exit codes, signals, one-line
# output), which imports no sub-package, and the entry points (``python -m`` commands), which import
# any; so is ``sweeps/vault/__main__.py``, an entry point that nothing imports.
LAYERS = ["storage", "config", "experiment", "study", "trial", "vault", "driver"]
BASE = {"sweeps._errors", "sweeps._exit", "sweeps._interrupt", "sweeps._lazy", "sweeps._markdown", "sweeps._packaged",
        "sweeps._say"}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in LAYERS and parts[-1] != "__main__":
        return LAYERS.index(parts[1])
    return None


def _upward_imports(graph: dict[str, set[str]]) -> list[str]:
    offenders = []
    for module, imported in sorted(graph.items()):
        for other in sorted(imported):
            if module in BASE and other.startswith("sweeps.") and other not in BASE:
                offenders.append(f"{module} -> {other}")
            mine, theirs = _layer(module), _layer(other)
            if mine is not None and theirs is not None and theirs > mine:
                offenders.append(f"{module} -> {other}")
    return offenders


def test_layering_finds_a_planted_upward_import():
    graph = {"sweeps.config._a": {"sweeps.trial._b"}, "sweeps.trial._b": {"sweeps.config._a"},
             "sweeps._errors": {"sweeps.storage._url"}, "sweeps.vault.__main__": {"sweeps.driver._x"}}
    assert _upward_imports(graph) == ["sweeps._errors -> sweeps.storage._url", "sweeps.config._a -> sweeps.trial._b"]


def test_layering_sub_packages_import_only_lower_layers():
    graph = _graph("sweeps")
    assert {m.split(".")[1] for m in graph if m.count(".") >= 2} == set(LAYERS), "LAYERS lists every sub-package"
    assert _upward_imports(graph) == []


# What Optuna keeps private on its objects; read in the isolated modules only.
OPTUNA_PRIVATE_ATTRS = {"_storage", "_study_id", "_trial_id", "_cached_frozen_trial"}
PRIVATE_ATTRS_ALLOWED = {"sweeps/storage/_internals.py", "sweeps/storage/_journal.py"}


def _private_attrs(path: Path) -> set[str]:
    return {node.attr for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and node.attr in OPTUNA_PRIVATE_ATTRS}


def test_layering_finds_a_planted_private_attribute(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f(study):\n    return study._storage, study.study_name\n")
    assert _private_attrs(path) == {"_storage"}


# Tests that pin the Optuna behaviour the isolated modules rely on may read it too.
PRIVATE_ATTRS_PINNED = {"tests/sweeps/test_journal.py", "tests/sweeps/test_internals.py", "tests/test_layering.py"}


def test_layering_optuna_private_attributes_only_in_the_isolated_modules():
    paths = [*(ROOT / "sweeps").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]
    allowed = PRIVATE_ATTRS_ALLOWED | PRIVATE_ATTRS_PINNED
    offenders = [f"{p.relative_to(ROOT)}: {sorted(_private_attrs(p))}" for p in paths
                 if str(p.relative_to(ROOT)) not in allowed and _private_attrs(p)]
    assert offenders == []
