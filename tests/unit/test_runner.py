"""``bench run`` / ``bench search`` in process on tiny data with the tiny test families: bad
input is one line and creates nothing; the final phase's plans (final fits, the reserve, the
one-standard-error choice). The runs in subprocesses are in ``tests/e2e/test_runner_runs.py``."""

from __future__ import annotations

import time
from pathlib import Path

import bench_tiny_plugin  # noqa: F401
import numpy as np
import optuna
import pytest
from conftest import make_npz
from runs import TINY

from bench.cli import main
from bench.data.load import load_splits
from bench.errors import ConfigError


@pytest.fixture
def npz(tmp_path) -> str:
    return "npz:" + str(make_npz(tmp_path / "data" / "tiny.npz", counts=(96, 32, 32)))


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"--dataset": "breastmnistt"}, "unknown dataset 'breastmnistt'"),
        ({"--families": "tiny_mpl"}, "unknown model family 'tiny_mpl'"),
        ({"--budget": "4x"}, "bad budget '4x'"),
        ({"--budget": "0m"}, "bad budget '0m': it must be more than zero"),
        ({"--out": "{file}/sub"}, "is not writable"),
        ({"--storage": "postgresql://bench:pw@127.0.0.1:1/x"}, "cannot reach storage"),
        ({"--augment": "flipz"}, "unknown augmentation 'flipz'"),
        ({"--cv": "1"}, "--cv 1: give at least 2 folds"),
        ({"--cv": "65"}, "--cv 65: the smallest class has 64 item(s) in train + val"),
        ({"--cv": "2.5"}, "invalid int value: '2.5'"),
        ({"--max-memory": "0"}, "--max-memory 0: give a size of at least 1M, e.g. 8G"),
        ({"--max-memory": "10X"}, "bad --max-memory '10X': give a size like 8G or 512M"),
        ({"--spaces": "/nonexistent/spaces"}, "--spaces /nonexistent/spaces: does not exist"),
    ],
    ids=["dataset", "family", "4x", "0m", "out", "storage", "augment", "cv1", "cv-big",
         "cv-float", "max-memory-0", "max-memory-10X", "spaces"],  # fmt: skip
)
@pytest.mark.parametrize("command", ["run", "search"])
def test_bad_input_is_one_line_exit_2_before_any_work(
    npz, tmp_path, capsys, command, change, needle
) -> None:
    afile = tmp_path / "a_file"
    afile.write_text("")
    args = {
        "--plugins": "bench_tiny_plugin",
        "--families": "tiny_mlp",
        "--augment": "none",
        "--dataset": npz,
        "--budget": "20s",
        "--out": str(tmp_path / "out"),
        **change,
    }
    args["--out"] = args["--out"].replace("{file}", str(afile))
    argv = [command, "--quiet", *(x for kv in args.items() for x in kv)]
    try:
        code = main(argv)
    except SystemExit as exc:  # a usage error, reported by argparse
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert "pw@" not in err[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_final_fits_are_the_seeds_with_or_without_cv() -> None:
    from bench.run.command import DEFAULT_SEEDS, final_fits

    assert final_fits(None) == DEFAULT_SEEDS == 3 and final_fits(2) == 2
    with pytest.raises(ConfigError, match="--seeds 0: give at least 1"):
        final_fits(0)


def test_cv_final_fits_refit_on_the_whole_pool_with_no_val_split(npz) -> None:
    from bench.data.folds import final_fit_sizes, refit_splits

    splits = load_splits(npz)
    refit = refit_splits(splits)
    assert final_fit_sizes(splits.train_val(), 3) == (128, 0) == (len(refit.train), 0)
    assert final_fit_sizes(splits.train_val(), None) == (96, 32)
    np.testing.assert_array_equal(
        refit.train.images, np.concatenate([splits.train.images, splits.val.images])
    )
    assert len(refit.val) == 0 and refit.val.images.shape[1:] == splits.val.images.shape[1:]
    assert refit.test is splits.test


def test_the_reserve_plans_a_final_fit_on_the_whole_train_split() -> None:
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from bench.search import attrs
    from bench.search.budget import VAL_COST

    def trial(fraction: float):
        return create_trial(
            params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=0.9,
            user_attrs={attrs.EPOCH_SECONDS: 2.0, attrs.EPOCHS: 10,
                        attrs.TRAIN_FRACTION: fraction},
        )  # fmt: skip

    sizes = (1000, 300, 600)  # train, val, test
    predict = 2.0 * VAL_COST * 600 / (1000 + VAL_COST * 300)  # test at the full epoch's speed
    assert attrs.final_fit_seconds(trial(1.0), sizes) == pytest.approx(20.0 + predict)
    # a trial on a quarter of train: its epochs scaled to the whole split, as the final fit
    scale = (1000 + VAL_COST * 300) / (250 + VAL_COST * 300)
    predict = 2.0 * VAL_COST * 600 / (250 + VAL_COST * 300)
    assert attrs.final_fit_seconds(trial(0.25), sizes) == pytest.approx(20.0 * scale + predict)
    assert attrs.final_fit_seconds(trial(0.25)) == 20.0  # no sizes: the trial's own time
    # a --cv trial: a quarter of one fold's 600 train images, 100 held-out images reported on
    # each epoch; its refit trains on the whole pool of 1000 (no val)
    fold = create_trial(
        params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=0.9,
        user_attrs={attrs.EPOCH_SECONDS: 2.0, attrs.EPOCHS: 10, attrs.TRAIN_FRACTION: 0.25,
                    attrs.EPOCH_IMAGES: 150 + VAL_COST * 100},
    )  # fmt: skip
    per_image = 2.0 / (150 + VAL_COST * 100)
    assert attrs.epoch_seconds_for(fold, n_train=1000, n_val=0) == pytest.approx(250 * per_image)
    assert attrs.final_fit_seconds(fold, (1000, 0, 600)) == pytest.approx(
        10 * 1000 * per_image + VAL_COST * 600 * per_image
    )


def test_with_cv_a_tie_within_one_standard_error_goes_to_the_refit_that_trains() -> None:
    from optuna.trial import create_trial

    from bench.search import attrs
    from bench.search.budget import RunBudget
    from bench.search.select import refit_choice

    def trial(value: float, folds: list[float], epoch_s: float):
        return create_trial(value=value, user_attrs={
            attrs.EPOCH_SECONDS: epoch_s, attrs.EPOCHS: 3, attrs.TRAIN_FRACTION: 1.0,
            attrs.EPOCH_IMAGES: 1000.0, attrs.FOLD_SCORES: folds,
        })  # fmt: skip

    study = optuna.create_study(direction="maximize")
    costly = trial(0.99997, [0.99996, 0.99999, 0.99996], epoch_s=10.0)  # se ~1e-5
    for t in (costly, trial(0.99996, [0.99995, 0.99997, 0.99996], epoch_s=1.0),
              trial(0.999, [0.999, 0.999, 0.999], epoch_s=0.1)):  # fmt: skip
        study.add_trial(t)
    best = max(study.trials, key=lambda t: t.value)
    sizes = (1000, 0, 100)  # a --cv refit: the pool, no val

    def choice(cv: int, budget_s: float):
        budget = RunBudget(t0=time.monotonic(), budget_s=budget_s, seeds=3)
        return refit_choice(study, best, sizes, cv=cv, seeds=3,
                            time_left=budget.time_left()).value  # fmt: skip

    # a minute for 3 seeds: the best needs ~36 s a fit, the tied one ~4 s, so it is chosen;
    # the cheapest (0.999) is not tied
    assert choice(3, 60) == 0.99996
    assert choice(3, 3600) == 0.99997  # every tied refit trains all its epochs: the best
    assert choice(0, 60) == 0.99997  # no folds, no standard error: the best


def test_final_fit_epochs_fit_their_deadline_share() -> None:
    from bench.search.budget import final_epochs

    assert final_epochs(30, epoch_s=2.0, seconds=23.0, slowdown=1.0) == 10  # 23 / (2 x 1.15)
    assert final_epochs(30, epoch_s=2.0, seconds=23.0, slowdown=2.0) == 5  # slower machine now
    assert final_epochs(30, epoch_s=2.0, seconds=1000.0, slowdown=1.0) == 30
    assert final_epochs(30, epoch_s=2.0, seconds=0.1, slowdown=1.0) == 1
    assert final_epochs(30, epoch_s=None, seconds=5.0, slowdown=1.0) == 30  # not measured


def test_final_fits_train_on_the_whole_split_when_the_shortest_trial_fits() -> None:
    from bench.search.budget import MIN_EPOCHS, VAL_COST, final_plan

    assert MIN_EPOCHS == 3
    # a trial on half of 1000 train images (val 300): 20 epochs of 1 s each
    sizes = dict(n_train=1000, n_val=300, slowdown=1.0)
    scale = (1000 + VAL_COST * 300) / (500 + VAL_COST * 300)
    # time for the trial's 20 epochs at full size: the whole split, all 20 epochs
    assert final_plan(20, 0.5, epoch_s=1.0, seconds=20 * scale * 1.15, **sizes) == (20, 1.0)
    # time for 8 full-size epochs: the whole split, 8 epochs (fewer than half the trial's 20:
    # more data beats repeating the subsample)
    assert final_plan(20, 0.5, epoch_s=1.0, seconds=8.5 * scale * 1.15, **sizes) == (8, 1.0)
    # time for 3 full-size epochs (the search's shortest trial) still gets the whole split
    assert final_plan(20, 0.5, epoch_s=1.0, seconds=3.5 * scale * 1.15, **sizes) == (3, 1.0)
    # time for fewer than 3 full-size epochs: the trial's subsample, its epochs cut
    assert final_plan(20, 0.5, epoch_s=1.0, seconds=2.5 * scale * 1.15, **sizes) == (4, 0.5)
    # a trial of 2 epochs needs both of them on the whole split
    assert final_plan(2, 0.5, epoch_s=1.0, seconds=2.5 * scale * 1.15, **sizes) == (2, 1.0)
    assert final_plan(2, 0.5, epoch_s=1.0, seconds=1.5 * scale * 1.15, **sizes) == (2, 0.5)
    assert final_plan(20, 1.0, epoch_s=1.0, seconds=1e6, **sizes) == (20, 1.0)


def test_ensemble_members_get_only_what_the_chosen_fits_leave() -> None:
    from bench.search.budget import ENSEMBLE_SHARE_MAX, member_time

    # plenty of time: the members' whole estimate
    assert member_time(40.0, need_s=100.0, left=300.0) == 40.0
    # the chosen fits need 200 of 240 s: the members get the 40 s left over, not their 80
    assert member_time(80.0, need_s=200.0, left=240.0) == 40.0
    # the chosen fits need more than is left: nothing for the members
    assert member_time(80.0, need_s=300.0, left=240.0) == 0.0
    # never more than the cap of what is left
    assert member_time(500.0, need_s=0.0, left=100.0) == ENSEMBLE_SHARE_MAX * 100.0


def _corrupt_npz(path: Path) -> Path:
    """MedMNIST layout whose arrays read, but whose images are float: refused at load."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 10), ("test", 10)):
        arrays[f"{split}_images"] = rng.random((n, 28, 28)).astype(np.float32)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


CASES_3D = ["2D family on volumes", "2D-only augmentation", "volumes not 4D", "monai:nosuch"]


@pytest.mark.parametrize(
    "case", ["corrupt npz", "missing size", "missing file", "truncated", *CASES_3D]
)
@pytest.mark.parametrize("command", ["run", "search"])
def test_refused_input_creates_nothing(tmp_path, capsys, command, case) -> None:
    """Every input is checked before the first file or folder is made: no study journal,
    no run folder, not even OUT."""
    tiny = TINY
    if case in CASES_3D:
        vol = f"npz:{make_npz(tmp_path / 'vol.npz', size=8, ndim=3, counts=(8, 4, 4))}"
        tiny = []
    if case == "2D family on volumes":
        dataset, extra = vol, ["--families", "small_cnn"]
        needle = "small_cnn takes 2D inputs but npz:"
    elif case == "2D-only augmentation":
        dataset, extra = vol, ["--families", "small_cnn3d", "--augment", "dcgan"]
        needle = "augmentation dcgan works on 2D data only"
    elif case == "monai:nosuch":
        pytest.importorskip("monai")
        dataset, extra, needle = vol, ["--families", "monai:nosuch"], "unknown MONAI network"
    elif case == "volumes not 4D":
        path = make_npz(tmp_path / "flat.npz", size=28, counts=(8, 4, 4))
        path.with_name(path.name + ".json").write_text('{"ndim": 3, "n_channels": 1}')
        dataset, extra, needle = f"npz:{path}", ["--families", "small_cnn3d"], "is 3D: expected"
    elif case == "corrupt npz":
        dataset, extra, needle = f"npz:{_corrupt_npz(tmp_path / 'bad.npz')}", [], "float32"
    elif case == "missing size":
        dataset, extra, needle = "breastmnist", ["--size", "100"], "has no size 100"
    elif case == "missing file":
        (tmp_path / "empty").mkdir()
        dataset, extra = "breastmnist", ["--data-dir", str(tmp_path / "empty")]
        needle = "breastmnist.npz not found"
    else:
        path = make_npz(tmp_path / "cut.npz", counts=(40, 10, 10))
        path.write_bytes(path.read_bytes()[:300])
        dataset, extra, needle = f"npz:{path}", [], "cannot read as npz"
    out = tmp_path / "out"
    argv = [command, "--quiet", "--dataset", dataset, "--budget", "1m", "--out", str(out),
            *extra, *tiny]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not out.exists()


PINNED = ["--dataset", "breastmnist", "--budget", "2m", "--plugins", "bench_tiny_plugin",
          "--families", "tiny_mlp", "--augment", "none,simple", "--seed", "1", "--cv", "3",
          "--max-memory", "8G", "--quiet", "--device", "cpu", "--study", "pinned",
          "--img-size", "28"]  # fmt: skip


def _run_config(argv: list[str], tmp_path):
    """The RunConfig and RunState ``bench ARGV`` prepares (it creates nothing)."""
    from bench.cli import build_parser
    from bench.run.command import prepare
    from bench.run.settings import RunFlags

    args = build_parser().parse_args([*argv, "--out", str(tmp_path / "out")])
    return prepare(RunFlags.of(vars(args)), finalize=args.command == "run", t0=0.0)


@pytest.mark.parametrize(
    "command,extra,changed,hashed",
    [("run", ["--seeds", "2", "--ensemble", "3", "--jobs", "2"],
      {"seeds": 2, "ensemble": 3, "jobs": 2, "max_memory": 4 * 2**30}, "386e7fbbeb59"),
     ("search", [], {"seeds": 0, "ensemble": 1, "jobs": 1, "max_memory": 8 * 2**30},
      "080710ce29e8")],
)  # fmt: skip
def test_the_recorded_config_of_fixed_flags_is_pinned(tmp_path, command, extra, changed,
                                                      hashed) -> None:  # fmt: skip
    """The record's ``config`` and its hash for the same flags, as before RunConfig."""
    import dataclasses

    from bench.results.records import config_hash

    cfg, state = _run_config([command, *PINNED, *extra], tmp_path)
    assert cfg.config() == {
        "dataset": "breastmnist", "data_size": 28, "img_size": 28, "families": ["tiny_mlp"],
        "augment": ["none", "simple"], "metric": "auc", "sampler": "tpe", "pruner": "hyperband",
        "seed": 1, "cv": 3, "budget_s": 120, "study_name": "pinned", "storage_kind": "journal",
        **changed,
    }  # fmt: skip
    assert config_hash(cfg.config(), {}) == hashed
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 2  # type: ignore[misc]
    assert state.budget.budget_s == 120 and state.speeds == {}
    assert (state.publish is not None) == (cfg.jobs > 1)
    assert not (tmp_path / "out").exists()


def test_a_workers_argv_is_the_runs_resolved_flags(tmp_path) -> None:
    """``bench search`` arguments rebuilt from the flag table: parsed back, they are the
    run's resolved settings (what the hand-written argv gave)."""
    from bench.cli import build_parser
    from bench.run.workers import follow_file, worker_argv

    cfg, _ = _run_config(["run", *PINNED, "--jobs", "2"], tmp_path)
    argv = worker_argv(cfg, 30, follow=follow_file(cfg))
    assert argv[1:4] == ["-m", "bench", "search"]
    args = vars(build_parser().parse_args(argv[3:]))
    assert args == {
        "command": "search", "dataset": "breastmnist", "size": 28, "data_dir": None,
        "plugins": "bench_tiny_plugin", "device": "cpu", "out": str(tmp_path / "out"),
        "quiet": True, "budget": "30s", "families": "tiny_mlp", "augment": "none,simple",
        "storage": str(tmp_path / "out" / "studies" / "pinned.journal"), "study": "pinned",
        "metric": "auc", "sampler": "tpe", "pruner": "hyperband", "seed": 1, "img_size": 28,
        "cv": 3, "max_memory": str(4 * 2**30), "n_trials": None, "spaces": None,
        "follow": str(tmp_path / "out" / "workers" / "pinned.search_end"),
    }  # fmt: skip
    cfg, _ = _run_config(["run", "--dataset", "breastmnist", "--budget", "2m", "--jobs", "2",
                          "--storage", "sqlite:///x.db"], tmp_path)  # fmt: skip
    args = vars(build_parser().parse_args(worker_argv(cfg, 30)[3:]))
    assert args["storage"] == "sqlite:///x.db" and args["cv"] is None and args["seed"] == 0
    assert args["families"] == "" and args["follow"] is None


def test_a_spaces_folder_is_the_runs_space_and_its_workers(tmp_path, monkeypatch) -> None:
    """``--spaces DIR`` (relative here): the run searches that folder's files, not the
    package's, and its workers are given the same folder, absolute."""
    from bench.cli import build_parser
    from bench.run.workers import worker_argv
    from bench.search.spaces import default_space_dir

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    common = (default_space_dir() / "common.yaml").read_text()
    (tmp_path / "mine" / "common.yaml").write_text(common)
    (tmp_path / "mine" / "small_cnn.yaml").write_text(
        "family: small_cnn\nparams:\n  width: {type: categorical, choices: [8]}\n"
    )
    argv = ["run", "--dataset", "breastmnist", "--budget", "2m", "--jobs", "2", "--spaces", "mine"]
    cfg, _ = _run_config(argv, tmp_path)
    assert list(cfg.space.families) == ["small_cnn"]  # the one family with a file there
    assert cfg.space.families["small_cnn"].params["width"].choices == (8,)
    assert cfg.space_dir == tmp_path / "mine"
    args = vars(build_parser().parse_args(worker_argv(cfg, 30)[3:]))
    assert args["spaces"] == str(tmp_path / "mine")
    default, _ = _run_config(argv[:-2], tmp_path)
    assert "resnet18" in default.space.families and default.space_dir is None
