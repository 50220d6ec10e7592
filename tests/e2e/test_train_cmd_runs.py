"""``bench train`` end to end in subprocesses: the run folder, record and predictions that
``bench evaluate`` re-scores, repeatable seeds, a DCGAN cache, a 3D ResNet with the MedMNIST
v2 recipe, an augmentation ablation, a diverging family's one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runs import TESTS

from bench.cli import main
from bench.run.train_cmd import PROTOCOLS

PLUGIN = {"PYTHONPATH": str(TESTS)}


def train(run_bench, dataset: str, out: Path, *extra: str):
    return run_bench(
        "train",
        "--dataset",
        dataset,
        "--model",
        "tiny_mlp",
        "--plugins",
        "bench_tiny_plugin",
        "--out",
        str(out),
        "--quiet",
        *extra,
        env=PLUGIN,
    )


def test_train_writes_record_and_predictions_that_evaluate_rescores(
    tiny_npz, run_bench, tmp_path, capsys
):
    dataset = tiny_npz(task="multi-class")
    args = (
        "--epochs",
        "3",
        "--seeds",
        "2",
        "--seed",
        "4",
        "--param",
        "hidden=8",
        "--param",
        "lr=0.01",
    )
    runs = []
    for i in range(2):
        proc = train(run_bench, dataset, tmp_path / f"out{i}", *args)
        assert proc.returncode == 0, proc.stderr
        (run_dir,) = (tmp_path / f"out{i}").iterdir()
        runs.append(json.loads((run_dir / "record.json").read_text()))
    record = runs[0]
    assert record["kind"] == "train" and record["status"] == "ok"
    assert record["method"] == "Tiny MLP (28)" and record["family"] == "tiny_mlp"
    assert record["seeds"] == "4;5" and record["n_seeds"] == 2 and record["epochs"] == 3
    assert record["params"]["hidden"] == 8 and record["params"]["lr"] == 0.01
    assert record["n_trials"] == 0 and record["search_s"] == 0 and record["sampler"] == ""
    assert record["n_params"] == 28 * 28 * 8 + 8 + 8 * 4 + 4
    aucs = [s["test_auc"] for s in record["per_seed"]]
    assert record["test_auc_mean"] == pytest.approx(sum(aucs) / 2)
    # same seeds, same test metrics
    assert [(s["test_auc"], s["test_acc"]) for s in runs[1]["per_seed"]] == [
        (s["test_auc"], s["test_acc"]) for s in record["per_seed"]
    ]

    run_dir = next((tmp_path / "out0").iterdir())
    fits = json.loads((run_dir / "fits.json").read_text())
    assert [f["seed"] for f in fits] == [4, 5] and len(fits[0]["history"]) == 3
    assert "confusion_matrix" in fits[0]["test"]
    for per_seed, fit in zip(record["per_seed"], fits, strict=True):
        pred = run_dir / fit["predictions"]
        assert pred.name.endswith(f"@seed{per_seed['seed']}.csv") and "_test_" in pred.name
        assert main(["evaluate", "--dataset", dataset, "--predictions", str(pred)]) == 0
        scored = json.loads(capsys.readouterr().out)
        assert scored["auc"] == pytest.approx(per_seed["test_auc"], abs=1e-12)
        assert scored["acc"] == pytest.approx(per_seed["test_acc"], abs=1e-12)


def test_dcgan_training_time_is_recorded_and_cache_reused(tiny_npz, run_bench, tmp_path):
    dataset = tiny_npz(task="binary-class")
    extra = ("--epochs", "1", "--augment", "dcgan", "--param", "dcgan_steps=3")
    records = []
    for i in range(2):  # the second run finds the generator in the cache
        proc = train(run_bench, dataset, tmp_path / f"out{i}", *extra)
        assert proc.returncode == 0, proc.stderr
        (run_dir,) = (tmp_path / f"out{i}").iterdir()
        fits = json.loads((run_dir / "fits.json").read_text())
        records.append((json.loads((run_dir / "record.json").read_text()), fits))
    (first, fits1), (second, fits2) = records
    assert fits1[0]["augment_info"]["cache"] == "miss"
    assert fits1[0]["augment_info"]["dcgan_steps_done"] == 3
    assert first["augment_train_s"] == round(fits1[0]["augment_info"]["dcgan_train_s"], 3) > 0
    assert fits2[0]["augment_info"]["cache"] == "hit" and second["augment_train_s"] == 0


def test_protocol_recipe_on_volumes_with_a_3d_resnet(tiny_npz, run_bench, tmp_path):
    """The MedMNIST v2 recipe (Adam 1e-3, step schedule, best val AUC) with a converted
    3D ResNet, one epoch: given by --param (--protocol fixes its 100 epochs)."""
    dataset = tiny_npz(size=28, ndim=3, counts=(8, 4, 4))
    recipe = [f"--param={k}={v}" for k, v in PROTOCOLS["medmnist-v2"].items()
              if k not in ("epochs", "milestones", "early_stop")]  # fmt: skip
    r = run_bench("train", "--dataset", dataset, "--model", "resnet18_acs", *recipe,
                  "--epochs", "1", "--out", tmp_path / "out", "--quiet")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (run_dir,) = (tmp_path / "out").iterdir()
    record = json.loads((run_dir / "record.json").read_text())
    assert record["method"] == "ResNet-18 + ACS (28)" and record["family"] == "resnet18_acs"
    assert record["params"]["lr"] == 0.001 and record["params"]["schedule"] == "step"
    assert record["epochs"] == 1 and 0.0 <= record["test_auc_mean"] <= 1.0


def test_an_augmentation_list_is_an_ablation_with_one_record_per_policy(
    tiny_npz, run_bench, tmp_path
):
    out = tmp_path / "out"
    r = train(run_bench, tiny_npz(), out, "--epochs", "1", "--augment", "none,simple",
              "--param", "simple_strength=0.3")  # fmt: skip
    assert r.returncode == 0, r.stderr
    records = sorted((json.loads(p.read_text()) for p in out.glob("*/record.json")),
                     key=lambda rec: rec["augment"])  # fmt: skip
    assert [rec["augment"] for rec in records] == ["none", "simple"]
    assert records[1]["params"]["simple_strength"] == 0.3
    assert "simple_strength" not in records[0]["params"]
    assert len({rec["run_id"] for rec in records}) == 2


def test_diverging_family_is_one_line(tiny_npz, run_bench, tmp_path):
    proc = run_bench(
        "train",
        "--dataset",
        tiny_npz(),
        "--model",
        "tiny_nan",
        "--plugins",
        "bench_tiny_plugin",
        "--out",
        str(tmp_path),
        "--epochs",
        "2",
        env=PLUGIN,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "diverged" in proc.stderr
    assert not list(tmp_path.glob("*/record.json"))
