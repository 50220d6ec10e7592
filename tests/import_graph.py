"""The import graph of ``bench/``, read from the source (every ``import`` statement, at module
level or inside a function), and the house rules it must keep: no cycle between modules, no
module taking another's underscore names, no function over 60 lines, and no argparse
namespace below the command layer (the ``cmd_*`` functions).

``python tests/import_graph.py`` prints the modules floor by floor (a module imports only
modules on lower floors) and exits 1 on a cycle; ``tests/unit/test_import_graph.py`` runs the
same checks.
"""

from __future__ import annotations

import ast
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bench"


def module_name(path: Path) -> str:
    """``bench/run/final.py`` -> ``bench.run.final``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    """Every module of ``bench/`` by its dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(node: ast.AST, here: str, modules: dict[str, Path]) -> list[tuple[str, str]]:
    """``(module, name)`` pairs one import statement takes from ``bench`` (name "" for a
    whole module); a relative import is resolved against ``here``."""
    if isinstance(node, ast.Import):
        return [(a.name, "") for a in node.names if a.name.split(".")[0] == "bench"]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = here if modules[here].name == "__init__.py" else here.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            package = package.rsplit(".", 1)[0]
        base = f"{package}.{base}" if base else package
    if base.split(".")[0] != "bench":
        return []
    return [(base, a.name) for a in node.names]


def imports(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """Module -> the ``bench`` modules it imports (a submodule named in ``from pkg import
    mod`` counts as that module)."""
    modules = modules or sources()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for module, attr in _imported(node, name, modules):
                sub = f"{module}.{attr}"
                targets.add(sub if attr and sub in modules else module)
        graph[name] = {t for t in targets if t != name and t in modules}
    return graph


def private_imports(modules: dict[str, Path] | None = None) -> list[str]:
    """``path:line module._name`` for each underscore name imported from another module."""
    modules = modules or sources()
    found = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for module, attr in _imported(node, name, modules):
                if attr.startswith("_") and not attr.startswith("__"):
                    where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                    found.append(f"{where} {module}.{attr}")
    return found


def long_functions(limit: int = 60) -> list[str]:
    """``path:line name (n lines)`` for each function of ``bench/`` longer than ``limit``
    lines (from its ``def`` line to its last line)."""
    found = []
    for path in sources().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                    found.append(f"{where} {node.name} ({n} lines)")
    return found


def namespace_below_commands() -> list[str]:
    """``path:line name`` for each function of ``bench/`` that takes an argparse namespace
    (a parameter annotated ``argparse.Namespace``) without being a command (``cmd_*``): only
    the command layer reads the parsed command line."""
    found = []
    for path in sources().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            notes = [ast.unparse(a.annotation) for a in arguments if a.annotation is not None]
            if any("Namespace" in note for note in notes) and not node.name.startswith("cmd_"):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    return found


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (its modules in order, the first repeated at the end), or []."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as err:
        return list(err.args[1])
    return []


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor: 0 for a module importing no ``bench`` module, else one above the
    highest module it imports (the graph must have no cycle)."""
    floor: dict[str, int] = {}
    for module in TopologicalSorter(graph).static_order():
        floor[module] = 1 + max((floor[t] for t in graph[module]), default=-1)
    return floor


def main() -> int:
    graph = imports()
    found = cycle(graph)
    if found:
        print("import cycle: " + " -> ".join(found))
        return 1
    by_floor = floors(graph)
    for module in sorted(graph, key=lambda m: (-by_floor[m], m)):
        print(f"{by_floor[module]:>3}  {module}")
    problems = [f"underscore import: {line}" for line in private_imports()]
    problems += [f"function over 60 lines: {line}" for line in long_functions()]
    problems += [f"namespace below the commands: {line}" for line in namespace_below_commands()]
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
