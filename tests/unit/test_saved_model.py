"""Saved fits, ensembles, ``bench predict`` and ``bench export`` on tiny data: the round trip
reproduces the run's own test probabilities; greedy selection on hand-made scores; bad input
is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from saved_runs import assert_round_trip, bench, read_csv_scores, saved

from bench.results.predict_csv import read_table
from bench.results.predictions import load_test_predictions
from bench.scoring import acc, auc
from bench.search.ensemble import select_ensemble


@pytest.fixture
def npz(finished_train_run) -> Path:
    """The tiny npz the session's finished run trained on."""
    return finished_train_run[0]


@pytest.fixture
def trained(finished_train_run, tmp_path) -> Path:
    """A finished ``bench train`` folder: the tiny MLP (a plugin family), two seeds (a copy of
    the session's, which some tests here damage)."""
    run_dir = finished_train_run[1]
    return Path(shutil.copytree(run_dir, tmp_path / "runs" / run_dir.name))


def test_train_saves_fits_that_predict_reproduces(trained, npz, tmp_path):
    record = json.loads((trained / "record.json").read_text())
    assert record["models"] == ["models/seed0.json", "models/seed1.json"]
    meta = json.loads((trained / "models" / "seed0.json").read_text())
    assert meta["family"] == "tiny_mlp" and meta["family_source"] == "plugin:bench_tiny_plugin"
    assert (meta["n_channels"], meta["img_size"], meta["mean"], meta["std"]) == (1, 28, 0.5, 0.5)
    assert meta["class_names"] and meta["task"] == "binary-class"
    # the seed ensemble is the mean of the two seeds' probabilities, scored by medmnist
    labels = np.load(npz)["test_labels"]
    mean = (saved(trained, "seed0") + saved(trained, "seed1")) / 2
    np.testing.assert_allclose(saved(trained, "ensemble-seeds"), mean, atol=1e-12)
    assert record["seed_ensemble_test_auc"] == pytest.approx(auc(labels, mean, "binary-class"))
    assert record["ensemble_test_acc"] == pytest.approx(acc(labels, mean, "binary-class"))
    # bench train keeps its test evidence too: every fit and both ensembles, with the labels
    kept = load_test_predictions(trained / record["test_predictions"])
    assert kept.chosen == ("seed0", "seed1") and np.array_equal(kept.labels, labels)
    np.testing.assert_allclose(kept.seed_ensemble, mean, atol=1e-6)
    assert record["seed_ensemble_test_auc_lo"] <= record["seed_ensemble_test_auc"] <= record[
        "seed_ensemble_test_auc_hi"]  # fmt: skip
    assert [f["fit"] for f in record["fit_intervals"]] == ["seed0", "seed1"]
    assert_round_trip(trained, npz, tmp_path)


def test_predict_reads_images_and_folders(trained, npz, tmp_path):
    from PIL import Image

    images = np.load(npz)["test_images"]
    folder = tmp_path / "pngs"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(images[i]).save(folder / "sub" / f"{i}.png")
    Image.fromarray(images[3]).convert("RGB").resize((56, 56)).save(folder / "big_rgb.png")
    out = tmp_path / "folder.csv"
    done = bench("predict", trained, folder, "--out", out, "--device", "cpu")  # trained on CPU
    assert done.returncode == 0, done.stderr
    assert "4 inputs" in done.stdout
    # one notice: the 56 px RGB image was shrunk to the run's 28 px, and how
    assert done.stderr.strip().splitlines() == [
        "note: resized 1 of 4 inputs from 56x56 to 28x28, the run's data size, with PIL "
        "bilinear (Image.resize, antialiased when shrinking)"
    ]
    table = read_table(out)
    assert table.index == ("big_rgb.png", "sub/0.png", "sub/1.png", "sub/2.png")
    assert table.split == "" and table.original_size == ("56x56", "28x28", "28x28", "28x28")
    assert table.resized_to == ("28x28",) * 4
    # a PNG of a test image scores exactly as the npz row did
    np.testing.assert_allclose(read_csv_scores(out)[1:], saved(trained, "ensemble")[:3],
                               atol=1e-6)  # fmt: skip
    one_csv = tmp_path / "1.csv"
    one = bench("predict", trained, folder / "sub" / "0.png", "--quiet", "--out", one_csv)
    assert one.returncode == 0 and len(one_csv.read_text().splitlines()) == 2
    assert one.stderr == ""  # nothing resized, no notice


def _corrupt(run_dir: Path) -> None:
    weights = run_dir / "models" / "seed0.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    "case,needle",
    [
        ("no-models", "has no saved model"),
        ("corrupt", "corrupt weights (sha256 differs"),
        ("mode", "image mode I;16 cannot be converted"),
        ("empty", "no images"),
        ("out", "is not writable"),
        ("format", "was saved by bench"),
        ("unfinished", "is not a finished run (no record.json"),
    ],
)
def test_bad_predict_input_is_one_line_exit_2(trained, npz, tmp_path, case, needle):
    from PIL import Image

    target, run_dir = npz, trained
    out = tmp_path / "p.csv"
    if case == "no-models":
        run_dir = tmp_path / "plain"
        run_dir.mkdir()
    elif case == "corrupt":
        _corrupt(trained)
    elif case == "mode":
        target = tmp_path / "deep.png"
        Image.fromarray(np.full((28, 28), 40000, np.uint16)).save(target)
    elif case == "empty":
        target = tmp_path / "empty"
        target.mkdir()
    elif case == "out":
        (tmp_path / "o").write_text("a file")
        out = tmp_path / "o" / "sub" / "p.csv"
    elif case == "unfinished":  # a kill after the models, before the record
        (trained / "record.json").unlink()
    elif case == "format":
        path = trained / "models" / "ensemble.json"
        path.write_text(path.read_text().replace('"format": 1', '"format": 99'))
    done = bench("predict", run_dir, target, "--out", out)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert not out.exists()


def test_select_ensemble_finds_the_complementary_pair():
    labels = np.array([0, 0, 1, 1, 0, 1])[:, None]

    def probs(p1):
        p1 = np.asarray(p1, dtype=float)
        return np.stack([1 - p1, p1], axis=1)

    # 7: mildly wrong on 4-5; 3: mildly wrong on 0-1, sure of 4-5; 5: a near copy of 7.
    # Each alone gets 4/6; the mean of 7 and 3 gets 6/6.
    candidates = {
        7: probs([0.1, 0.1, 0.9, 0.9, 0.6, 0.4]),
        3: probs([0.6, 0.6, 0.9, 0.9, 0.1, 0.9]),
        5: probs([0.11, 0.11, 0.89, 0.89, 0.61, 0.41]),
    }
    members = select_ensemble(candidates, labels, task="binary-class", metric="acc", rounds=4)
    assert {m.trial for m in members} == {7, 3}
    assert sum(m.weight for m in members) == pytest.approx(1.0)
    mixed = sum(m.weight * candidates[m.trial] for m in members)
    assert acc(labels, mixed, "binary-class") > max(
        acc(labels, c, "binary-class") for c in candidates.values()
    )
    one = select_ensemble(candidates, labels, task="binary-class", metric="acc", max_members=1)
    assert [(m.trial, m.weight) for m in one] == [(7, 1.0)]


def test_export_matches_pytorch_on_the_test_split(trained, npz, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    onnx_path = tmp_path / "model.onnx"
    done = bench("export", trained, "--onnx", onnx_path)
    assert done.returncode == 0, done.stderr
    assert "onnxruntime matches PyTorch on 32 test images" in done.stdout
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    images = np.load(npz)["test_images"]
    (got,) = session.run(["probabilities"], {"images": images})
    np.testing.assert_allclose(got, saved(trained, "ensemble"), atol=1e-4)
    # the file says how to feed it and read it: the saved fit's facts, read back by onnxruntime
    fit = json.loads((trained / "models" / "seed0.json").read_text())
    props = session.get_modelmeta().custom_metadata_map
    assert json.loads(props["class_names"]) == fit["class_names"]
    assert (props["task"], props["input_layout"], props["input_dtype"]) == (
        "binary-class", "NHW", "uint8")  # fmt: skip
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    assert (props["input_size"], props["channels"], props["model_input_size"]) == ("28", "1", "28")
    assert (float(props["mean"]), float(props["std"])) == (fit["mean"], fit["std"]) == (0.5, 0.5)
    assert props["normalisation"] == "(x / 255 - mean) / std, inside the graph"
    assert props["output"] == "probabilities (N, classes): softmax" and props["n_fits"] == "2"
    assert props["resize"].startswith("inside the graph: none. Resize other images to 28 first")
    single = bench("export", trained, "--onnx", tmp_path / "one.onnx", "--seed", "1")
    assert single.returncode == 0, single.stderr
    one = ort.InferenceSession(str(tmp_path / "one.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(one.run(None, {"images": images})[0], saved(trained, "seed1"),
                               atol=1e-4)  # fmt: skip
