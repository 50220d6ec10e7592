"""The command line: help without torch, exit status 2 with one `error:` line for user
mistakes (close names suggested), never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np
import pytest

from bench.cli import HANDLERS, main
from bench.results.predictions import write_predictions


def error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_help_lists_every_command(run_bench):
    r = run_bench("--help")
    assert r.returncode == 0, r.stderr
    for command in HANDLERS:
        assert command in r.stdout
    assert r.stderr == ""


def test_version(run_bench):
    from bench import __version__

    r = run_bench("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"bench {__version__}"


@pytest.mark.parametrize(
    "code",
    [
        "import bench.cli, sys; bench.cli.build_parser()",
        "import bench.cli, sys; assert bench.cli.main(['datasets', '--json']) == 0",
    ],
)
def test_no_torch_at_start_up(code):
    check = code + "; assert 'torch' not in sys.modules, 'torch was imported'"
    r = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: bench" in capsys.readouterr().out


def test_unknown_dataset_suggests_close_names(run_bench, tmp_path):
    preds = tmp_path / "p.csv"
    write_predictions(preds, np.full((4, 2), 0.5))
    line = error_line(run_bench("evaluate", "--dataset", "breastmnst", "--predictions", preds))
    assert "unknown dataset 'breastmnst'" in line and "did you mean breastmnist" in line
    line = error_line(run_bench("evaluate", "--dataset", "pneumonia", "--predictions", preds))
    assert "pneumoniamnist" in line


def test_user_errors_are_one_line(run_bench, tmp_path):
    preds = tmp_path / "p.csv"
    write_predictions(preds, np.full((4, 2), 0.5))
    cases = {
        "does not exist": ["evaluate", "--dataset", f"npz:{tmp_path / 'x.npz'}"],
        "image folder": ["evaluate", "--dataset", f"folder:{tmp_path / 'no_dir'}"],
        "breastmnist.npz not found": ["evaluate", "--dataset", "breastmnist",
                                      "--data-dir", tmp_path],
        "has no size 100": ["evaluate", "--dataset", "breastmnist", "--size", "100",
                            "--data-dir", tmp_path],
    }  # fmt: skip
    for expected, args in cases.items():
        line = error_line(run_bench(*args, "--predictions", preds))
        assert expected in line, line
    line = error_line(run_bench("datasets", "--plugins", "no_such_plugin_module"))
    assert "plugin module 'no_such_plugin_module' failed to import" in line


@pytest.mark.parametrize("budget", ["-5m", "-1h", "--5m"])
def test_negative_budget_is_the_budget_error(run_bench, budget):
    line = error_line(run_bench("run", "--dataset", "breastmnist", "--budget", budget))
    assert line.startswith(f"error: bad budget '{budget}'"), line


def test_argparse_errors_are_one_line(run_bench):
    line = error_line(run_bench("run", "--dataset", "breastmnist"))
    assert "the following arguments are required: --budget" in line
    line = error_line(run_bench("run", "--dataset", "breastmnist", "--budget", "1m", "--bogus"))
    assert "unrecognized arguments: --bogus" in line


def test_spaces_check_on_a_folder_without_spaces(run_bench, tmp_path):
    (tmp_path / "empty").mkdir()
    for args in (["--check", "--spaces"], ["--dir"]):  # --dir: the old name, still taken
        line = error_line(run_bench("spaces", *args, tmp_path / "empty"))
        assert f"no search space in {tmp_path / 'empty'}" in line and "common.yaml" in line
    for command in ("spaces", "models"):
        line = error_line(run_bench(command, "--spaces", tmp_path / "gone"))
        assert line.startswith(f"error: --spaces {tmp_path / 'gone'}: does not exist; pass")


def interrupted_cleanup_fails(args) -> int:
    """A handler whose cleanup fails under Ctrl-C, as Optuna's journal lock release does
    when the interrupt lands after its unlink: the second unlink raises FileNotFoundError."""
    try:
        raise KeyboardInterrupt
    except BaseException:
        os.unlink(os.path.join(args.out, "lock.rename"))


def test_ctrl_c_whose_cleanup_fails_is_still_the_interrupt_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(HANDLERS, "run", f"{__name__}:interrupted_cleanup_fails")
    rc = main(["run", "--dataset", "breastmnist", "--budget", "1m", "--out", str(tmp_path)])
    assert rc == 130
    err = capsys.readouterr().err
    assert err == "error: interrupted; run the same command again: the study resumes\n"


def subcommands() -> dict:
    """``{name: parser}`` of every ``bench`` subcommand."""
    from bench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def has_default(action: argparse.Action) -> bool:
    """The option has a default worth showing (not None, '', False, [], SUPPRESS)."""
    d = action.default
    return bool(action.option_strings) and action.help != argparse.SUPPRESS and not (
        any(d is none for none in (None, False, argparse.SUPPRESS)) or d in ("", []))  # fmt: skip


@pytest.mark.parametrize("command", sorted(HANDLERS))
def test_help_describes_output_shows_examples_and_defaults(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    parser = subcommands()[command]
    text = parser.format_help()
    assert len(parser.description) > 100  # what it does and writes, not a title
    examples = text.split("\nexamples:\n", 1)[1].splitlines()
    assert examples and all(line.startswith(f"  bench {command}") or line.startswith("      ")
                            or line.startswith("  bench run ") for line in examples)  # fmt: skip
    assert max(map(len, text.splitlines())) <= 80
    formatter = parser._get_formatter()
    shown = {a.option_strings[-1]: formatter._expand_help(a) for a in parser._actions
             if a.option_strings and a.help != argparse.SUPPRESS}  # fmt: skip
    for action in filter(has_default, parser._actions):
        assert str(action.default) in shown[action.option_strings[-1]], action.option_strings
    assert "--json" not in text  # the old spelling of --format json works, unlisted


def test_defaults_resolved_after_parsing_are_in_the_help():
    from bench.run.command import DEFAULT_SEEDS
    from bench.train import TrainHP

    parsers = subcommands()

    def help_of(command: str, flag: str) -> str:
        p = parsers[command]
        action = next(a for a in p._actions if flag in a.option_strings)
        return p._get_formatter()._expand_help(action)

    assert f"default {TrainHP().epochs};" in help_of("train", "--epochs")
    assert "default 1" in help_of("train", "--seeds")
    assert f"default {DEFAULT_SEEDS};" in help_of("run", "--seeds")
    assert "required" in help_of("peer", "--budget")  # no hidden 10m
    assert "default leaderboards" in help_of("leaderboard", "--out")
    assert "selected (default)" in help_of("predict", "--ensemble")
    for command in ("predict", "export"):
        assert help_of(command, "--seed").startswith("use only the fit trained with this seed")
    for command in ("train", "run", "search"):
        assert help_of(command, "--seed").startswith("the first random seed")
    for command in ("train", "run"):
        assert help_of(command, "--seeds").startswith("how many seeds")
    for command in ("predict", "augment-preview"):
        assert "file" in help_of(command, "--out")
    for command in ("train", "run", "search", "peer", "leaderboard"):
        assert "folder" in help_of(command, "--out")


@pytest.mark.parametrize("command", ["datasets", "models", "spaces", "compare"])
def test_listings_share_one_format_flag(command):
    parser = subcommands()[command]
    args = ["a", "b"] if command == "compare" else []
    assert parser.parse_args(args).format == "table"
    assert parser.parse_args([*args, "--json"]).format == "json"
    assert parser.parse_args([*args, "--format", "csv"]).format == "csv"
