"""The command line: help without torch, exit status 2 with one `error:` line for user
mistakes (close names suggested), never a traceback."""

from __future__ import annotations

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
    for args in (["--check"], []):
        line = error_line(run_bench("spaces", *args, "--dir", tmp_path / "empty"))
        assert f"no search space in {tmp_path / 'empty'}" in line and "common.yaml" in line


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
