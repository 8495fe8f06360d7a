"""The import structure: arrows run one way (``sfgym`` never imports ``agents``) and no modules import
each other, directly or round a longer loop. Read from the source (every import, also those inside
functions; those under ``if TYPE_CHECKING:`` never run and do not count), so nothing is imported here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sfgym", "agents")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def imported_modules(path: Path, modules: dict[str, Path], type_checking: bool = False,
                     package: str | None = None) -> set[str]:
    """The project modules ``path`` imports: ``import a.b``, ``from a.b import c`` (``a.b.c`` when that is a
    module, else ``a.b``), relative imports resolved; those under ``if TYPE_CHECKING:`` only if
    ``type_checking``."""
    if package is None:
        package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    type_checking_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                          and getattr(block.test, "id", getattr(block.test, "attr", None)) == "TYPE_CHECKING"
                          for statement in block.body for node in ast.walk(statement)}
    for node in ast.walk(tree):
        if id(node) in type_checking_only and not type_checking:
            continue  # `if TYPE_CHECKING:` imports are for annotations and never run
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {name for name in found if name in modules}


def import_graph(type_checking: bool = False) -> dict[str, set[str]]:
    """Each project module's project imports; with ``type_checking``, also those made for annotations only."""
    modules = project_modules()
    return {name: imported_modules(path, modules, type_checking) - {name} for name, path in modules.items()}


def test_the_graph_sees_lazy_and_from_imports():
    graph = import_graph()
    assert "sfgym.data.msmd" in graph["sfgym.data.synth"] or "sfgym.data.midi" in graph["sfgym.data.synth"]
    assert "sfgym.data.spectrogram" in graph["sfgym.data.msmd"]  # imported inside a function
    assert "agents.baselines.oracle" in graph["agents.baselines"]  # a package's own submodules


def _module_names_in(path, modules) -> set[str]:
    """agents' module names written as strings in a file: dotted ones anywhere, the bare package name where it
    is imported by name (``importlib.import_module("agents")``; elsewhere it is the `sfgym agents` command)."""
    tree = ast.parse(path.read_text())
    imported_by_call = {id(argument) for node in ast.walk(tree) if isinstance(node, ast.Call)
                        and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
                        for argument in node.args}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules
            and node.value.split(".")[0] == "agents" and ("." in node.value or id(node) in imported_by_call)}


def test_sfgym_never_imports_agents():
    offenders = {name: sorted(m for m in imports if m.split(".")[0] == "agents")
                 for name, imports in import_graph().items() if name.split(".")[0] == "sfgym"}
    assert {name: found for name, found in offenders.items() if found} == {}
    # nor by name (importlib.import_module("agents...")): agents comes in through entry points only
    modules = project_modules()
    # (a bare "agents" is also the `sfgym agents` command's name, so it counts only as a call's argument)
    named = {name: sorted(_module_names_in(path, modules)) for name, path in modules.items()
             if name.split(".")[0] == "sfgym"}
    assert {name: found for name, found in named.items() if found} == {}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every loop a depth-first search meets (a module met again on its own path), pairs included."""
    cycles, state = [], {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for imported in sorted(graph[name]):
            if state.get(imported) == "open":
                cycles.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                visit(imported, path + [imported])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


def test_the_cycle_search_finds_pairs_and_longer_loops():
    assert find_cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_can_see_type_checking_imports(tmp_path):
    """A module that imports another for its annotations only: counted with ``type_checking``, not without."""
    module = tmp_path / "annotated.py"
    module.write_text("from typing import TYPE_CHECKING\nimport sfgym.metrics\n"
                      "if TYPE_CHECKING:\n    from sfgym.data.piece import Piece\n")
    modules = project_modules()
    assert imported_modules(module, modules, package="sfgym") == {"sfgym.metrics"}
    assert imported_modules(module, modules, type_checking=True, package="sfgym") == {"sfgym.metrics",
                                                                                      "sfgym.data.piece"}


def test_no_import_cycles():
    graph = import_graph()
    mutual = sorted((a, b) for a, imports in graph.items() for b in imports if a < b and a in graph[b])
    assert mutual == []
    assert find_cycles(graph) == []  # longer loops too


def test_no_import_cycles_through_type_checking_imports():
    """Annotation-only imports form no loop either: a loop there is a knot hidden from the interpreter."""
    assert find_cycles(import_graph(type_checking=True)) == []
