"""The structure of ``bench/`` read from its source: no import cycle, no underscore imports,
no function over 60 lines, no argparse namespace below the commands."""

from __future__ import annotations

import import_graph


def test_bench_has_no_import_cycle():
    graph = import_graph.imports()
    assert len(graph) > 50  # the whole package was read
    assert import_graph.cycle(graph) == []


def test_no_module_imports_another_modules_underscore_names():
    assert import_graph.private_imports() == []


def test_no_function_in_bench_is_over_60_lines():
    assert import_graph.long_functions() == []


def test_only_commands_take_an_argparse_namespace():
    assert import_graph.namespace_below_commands() == []


def test_the_checker_finds_a_cycle_and_resolves_imports(tmp_path, monkeypatch):
    package = tmp_path / "bench"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from bench.sub import b\n\n"
        "def cmd_go(args: argparse.Namespace): ...\n\n"
        "def helper(args: argparse.Namespace): ...\n"
    )
    (package / "sub" / "b.py").write_text("def f():\n    from . import c\n" + "    x = 1\n" * 60)
    (package / "sub" / "c.py").write_text("import bench.a\nfrom bench.a import _hidden\n")
    monkeypatch.setattr(import_graph, "PACKAGE", package)
    graph = import_graph.imports()
    assert graph["bench.a"] == {"bench.sub.b"}
    assert graph["bench.sub.b"] == {"bench.sub.c"}
    assert graph["bench.sub.c"] == {"bench.a"}
    assert set(import_graph.cycle(graph)) == {"bench.a", "bench.sub.b", "bench.sub.c"}
    assert import_graph.private_imports() == ["bench/sub/c.py:2 bench.a._hidden"]
    assert import_graph.long_functions() == ["bench/sub/b.py:1 f (62 lines)"]
    assert import_graph.namespace_below_commands() == ["bench/a.py:5 helper"]
    (package / "sub" / "c.py").write_text("")
    graph = import_graph.imports()
    assert import_graph.cycle(graph) == []
    assert import_graph.floors(graph) == {
        "bench": 0, "bench.sub": 0, "bench.sub.c": 0, "bench.sub.b": 1, "bench.a": 2
    }
