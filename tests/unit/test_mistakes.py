"""Every ordinary mistake of issue 30, one command each: exit 2, exactly one ``error:`` line
on stderr naming the problem (the flag as the user typed it), no traceback, and nothing
created: the working folder (the command's cwd and output folder) lists the same before and
after. Fast cases only; the ones that train are in ``tests/e2e/test_mistakes_runs.py``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_npz

from bench.cli import main
from bench.errors import BenchError

NEEDS_MONAI = pytest.mark.skipif(
    __import__("importlib").util.find_spec("monai") is None, reason="monai is not installed"
)
PROC = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc here")

# id -> (arguments, words the one line must hold); in the arguments, {npz} is the tiny 2D
# dataset, {npz3d} the 3D one, {run} a finished run, {work} the working folder; adir/ (a
# folder) and afile (a file) are in it.
OUT = "--out", "{work}/afile"
TRAIN = "train", "--dataset", "npz:{npz}", "--model", "small_cnn", "--epochs", "1"
RUN = "run", "--dataset", "npz:{npz}", "--budget", "30s", "--out", "{work}/runs"
CASES = {
    # output paths, checked before any work; the error names the flag as typed
    "predict-out-folder": (("predict", "{run}", "{npz}", "--out", "{work}/adir"),
                           ["--out", "is a folder"]),
    "predict-out-no-folder": (("predict", "{run}", "{npz}", "--out", "{work}/no/p.csv"),
                              ["--out", "does not exist"]),
    "export-onnx-folder": (("export", "{run}", "--onnx", "{work}/adir"), ["--onnx ", "folder"]),
    "export-onnx-no-folder": (("export", "{run}", "--onnx", "{work}/missing/m.onnx"),
                              ["--onnx ", "does not exist"]),
    "leaderboard-out-file": (("leaderboard", *OUT), ["--out", "is a file"]),
    "leaderboard-out-proc": (("leaderboard", "--out", "/proc/lb"), ["--out /proc/lb"]),
    "preview-out-proc": (("augment-preview", "--dataset", "npz:{npz}", "--augment", "simple",
                          "--out", "/proc/x.png"), ["--out /proc/x.png"]),
    "preview-out-under-file": (("augment-preview", "--dataset", "npz:{npz}", "--augment",
                                "simple", "--out", "{work}/afile/"), ["--out", "is a file"]),
    "run-out-file": (("run", "--dataset", "npz:{npz}", "--budget", "30s", *OUT), ["--out"]),
    "search-out-file": (("search", "--dataset", "npz:{npz}", "--budget", "30s", *OUT),
                        ["--out"]),
    "run-storage-folder": ((*RUN, "--storage", "{work}/adir"), ["--storage", "folder"]),
    "train-out-file": ((*TRAIN, *OUT), ["--out"]),
    "peer-out-file": (("peer", "constant", "--dataset", "npz:{npz}", "--budget", "1m", *OUT),
                      ["--out"]),
    "report-plots-file": (("report", "{work}/runcopy"), ["plots", "is a file"]),
    # --param values against the training fields' and the builder's types
    "train-param-lr": ((*TRAIN, "--param", "lr=abc", "--out", "{work}/runs"),
                       ["--param lr=abc", "a number"]),
    "train-param-batch-float": ((*TRAIN, "--param", "batch_size=0.5", "--out", "{work}/runs"),
                                ["batch_size", "an integer"]),
    "train-param-width": ((*TRAIN, "--param", "width=abc", "--out", "{work}/runs"),
                          ["--param width=abc", "small_cnn"]),
    "train-timm-param-type": (("train", "--dataset", "npz:{npz}", "--model", "timm:resnet18",
                               "--param", "drop_rate=abc", "--out", "{work}/runs"),
                              ["drop_rate", "timm:resnet18"]),
    "train-timm-unknown-kwarg": (("train", "--dataset", "npz:{npz}", "--model",
                                  "timm:resnet18", "--param", "nonsense=3", "--out",
                                  "{work}/runs"), ["timm:resnet18", "nonsense"]),
    # third-party constructors
    "train-monai-unet": (("train", "--dataset", "npz:{npz3d}", "--model", "monai:UNet",
                          "--out", "{work}/runs"), ["monai:UNet", "channels, strides"]),
    "train-monai-param-type": (("train", "--dataset", "npz:{npz3d}", "--model",
                                "monai:DenseNet121", "--param", "growth_rate=abc", "--out",
                                "{work}/runs"), ["growth_rate", "monai:DenseNet121"]),
    "train-pretrained-hub-offline": (("train", "--dataset", "npz:{npz}", "--model",
                                      "timm:resnet18", "--pretrained", "hub", "--out",
                                      "{work}/runs"), ["127.0.0.1:9 is unreachable"]),
    # bad input files
    "predict-corrupt-npz": (("predict", "{run}", "{work}/corrupt.npz"),
                            ["corrupt.npz", "not a readable npz"]),
    # counts below 1 are refused, not taken for the default
    "run-ensemble-0": ((*RUN, "--ensemble", "0"), ["--ensemble 0"]),
    "run-ensemble-negative": ((*RUN, "--ensemble", "-2"), ["--ensemble -2"]),
    "run-seeds-0": ((*RUN, "--seeds", "0"), ["--seeds 0"]),
    "run-repeats-0": ((*RUN, "--repeats", "0"), ["--repeats 0"]),
    "run-jobs-0": ((*RUN, "--jobs", "0"), ["--jobs 0"]),
    "run-img-size-0": ((*RUN, "--img-size", "0"), ["--img-size 0"]),
    "run-size-0": ((*RUN, "--size", "0"), ["size 0"]),
    "train-seeds-0": ((*TRAIN, "--seeds", "0", "--out", "{work}/runs"), ["--seeds 0"]),
    "train-img-size-0": ((*TRAIN, "--img-size", "0", "--out", "{work}/runs"),
                         ["--img-size 0"]),
    "run-budget-1s": (("run", "--dataset", "npz:{npz}", "--budget", "1s", "--out",
                       "{work}/runs"), ["--budget 1s"]),
    "search-budget-5s": (("search", "--dataset", "npz:{npz}", "--budget", "5s", "--out",
                          "{work}/runs"), ["--budget 5s"]),
    # a data folder that is not there, in every command that takes one
    "datasets-data-dir": (("datasets", "--data-dir", "{work}/nodata"), ["--data-dir"]),
    "datasets-env-data-dir": (("datasets",), ["BENCH_DATA_DIR="]),
    "run-data-dir": ((*RUN, "--data-dir", "{work}/nodata"), ["--data-dir"]),
    "search-data-dir": (("search", "--dataset", "breastmnist", "--budget", "30s", "--out",
                         "{work}/runs", "--data-dir", "{work}/nodata"), ["--data-dir"]),
    "train-data-dir": ((*TRAIN, "--data-dir", "{work}/nodata", "--out", "{work}/runs"),
                       ["--data-dir"]),
    "peer-data-dir": (("peer", "constant", "--dataset", "breastmnist", "--budget", "1m",
                       "--data-dir", "{work}/nodata", "--out", "{work}/runs"), ["--data-dir"]),
    "evaluate-data-dir": (("evaluate", "--dataset", "breastmnist", "--predictions",
                           "{work}/afile", "--data-dir", "{work}/nodata"), ["--data-dir"]),
    "preview-data-dir": (("augment-preview", "--dataset", "breastmnist", "--augment", "simple",
                          "--data-dir", "{work}/nodata"), ["--data-dir"]),
    "export-data-dir": (("export", "{run}", "--onnx", "{work}/m.onnx", "--data-dir",
                         "{work}/nodata"), ["--data-dir"]),
    # a protocol overridden by a flag; conflicting flags; a hidden default
    "train-protocol-epochs": (("train", "--dataset", "npz:{npz}", "--model", "small_cnn",
                               "--protocol", "medmnist-v2", "--epochs", "1", "--out",
                               "{work}/runs"), ["--protocol medmnist-v2", "--epochs"]),
    "train-protocol-param": (("train", "--dataset", "npz:{npz}", "--model", "small_cnn",
                              "--protocol", "medmnist-v2", "--param", "lr=0.1", "--out",
                              "{work}/runs"), ["--param lr"]),
    "predict-seed-and-ensemble": (("predict", "{run}", "{npz}", "--seed", "0", "--ensemble",
                                   "seeds"), ["--seed 0", "--ensemble seeds"]),
    "predict-split-not-npz": (("predict", "{run}", "{work}/afile", "--split", "val"),
                              ["--split val"]),
    "predict-quiet-no-out": (("predict", "{run}", "{npz}", "--quiet"), ["--quiet", "--out"]),
    "peer-no-budget": (("peer", "constant", "--dataset", "npz:{npz}", "--out", "{work}/runs"),
                       ["--budget"]),
}  # fmt: skip
MARKS = {"train-monai-unet": NEEDS_MONAI, "train-monai-param-type": NEEDS_MONAI,
         "leaderboard-out-proc": PROC, "preview-out-proc": PROC}  # fmt: skip


def listing(*roots: Path) -> list[str]:
    """Every file and folder under ``roots``, with its size (a file rewritten in place shows)."""
    return sorted(f"{p} {p.stat().st_size if p.is_file() else '/'}"
                  for root in roots for p in Path(root).rglob("*"))  # fmt: skip


def refused(argv: list[str], capsys, *roots: Path) -> str:
    """Run ``bench ARGV`` in this process; assert the mistake's contract; its one line."""
    before = listing(*roots)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors exit from the parser
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert listing(*roots) == before  # nothing created, nothing changed
    return lines[0]


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """The working folder (the cwd): a folder, a file, a corrupt npz, a run copy whose plots/
    is a file; the data are beside it, and the cache outside it."""
    work = tmp_path / "work"
    (work / "adir").mkdir(parents=True)
    (work / "afile").write_text("a file\n")
    (work / "runcopy").mkdir()
    (work / "runcopy" / "plots").write_text("not a folder\n")
    npz = make_npz(tmp_path / "data" / "tiny.npz")
    (work / "corrupt.npz").write_bytes(npz.read_bytes()[:3000])  # a cut zip: BadZipFile
    monkeypatch.chdir(work)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    return work


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=MARKS.get(c, ()), id=c) for c in CASES]
)
def test_mistake_is_one_line_exit_2_and_creates_nothing(case, work, tmp_path, capsys,
                                                        monkeypatch, model_registry,
                                                        finished_train_run):  # fmt: skip
    argv, words = CASES[case]
    run_dir = finished_train_run[1]
    paths = {"npz": tmp_path / "data" / "tiny.npz", "work": work, "run": run_dir,
             "npz3d": make_npz(tmp_path / "data" / "tiny3d.npz", ndim=3, counts=(8, 4, 4))}
    if case == "datasets-env-data-dir":
        monkeypatch.setenv("BENCH_DATA_DIR", str(work / "nodata"))
    if case == "train-pretrained-hub-offline":
        import huggingface_hub.constants as hub

        monkeypatch.setattr(hub, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
        monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached
    line = refused([a.format(**paths) for a in argv], capsys, work, run_dir)
    assert all(w in line for w in words), line
    if case.startswith("export-onnx"):
        assert "--out" not in line


def test_a_search_that_cannot_start_leaves_no_journal(work, tmp_path):
    """A budget spent before the search could start (here: the process began 60 s ago) is
    refused before the study's journal is created."""
    from bench.run.command import _run_one, prepare
    from bench.run.settings import RunFlags

    npz = tmp_path / "data" / "tiny.npz"
    flags = RunFlags(dataset=f"npz:{npz}", budget="30s", size=None, data_dir=None, plugins="",
                     device="cpu", out=str(work / "runs"), quiet=True, families="small_cnn",
                     augment="none", storage=None, study=None, metric="auc", sampler="tpe",
                     pruner="hyperband", seed=0, img_size=None, cv=None, max_memory=None,
                     n_trials=None)  # fmt: skip
    cfg, state = prepare(flags, finalize=True, t0=time.monotonic() - 60)
    before = listing(work)
    with pytest.raises(BenchError, match=r"--budget 30s was spent before the search"):
        _run_one(cfg, state)
    assert listing(work) == before and not cfg.journal_path.exists()


@pytest.mark.parametrize("argv", [["datasets", "--json"], ["models"]], ids=" ".join)
def test_a_closed_pipe_ends_quietly(argv):
    """``bench datasets --json | head -1``: the reader is gone before the first write; the
    command stops with 141 (128 + SIGPIPE, as a shell reports a writer the pipe killed),
    and no traceback."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "bench", *argv], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=300)  # fmt: skip
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""
