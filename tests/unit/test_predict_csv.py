"""The ``bench predict --out`` CSV (bench/results/predict_csv.py): its layout, quoting, the
reader ``bench evaluate`` uses (and still the medmnist format), the resize notice and filter."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import make_npz

from bench.cli import main
from bench.errors import BenchError
from bench.results.predict_csv import PredictTable, read_for_evaluate, read_table, to_text
from bench.results.predictions import write_predictions
from bench.scoring import acc, auc

ODD = ("normal, benign", 'say "malignant"', "a;b")  # a comma, quotes, the multi-label separator


def _table(scores, *, names=ODD, index=None, split="test") -> PredictTable:
    n = len(scores)
    return PredictTable(
        class_names=tuple(names), index=tuple(index or map(str, range(n))),
        scores=np.asarray(scores, dtype=np.float64), predicted=(names[0],) * n, split=split,
        original_size=("224x224",) * n, resized_to=("28x28",) * n,
    )  # fmt: skip


def test_layout_quotes_names_and_round_trips(tmp_path):
    scores = np.random.default_rng(0).dirichlet(np.ones(3), size=5)
    table = _table(scores, index=["4", "3", "2", "1", "0"])
    path = tmp_path / "p.csv"
    path.write_text(to_text(table))
    header, first = list(csv.reader(path.open()))[:2]
    assert header == ["index", *ODD, "predicted", "split", "original_size", "resized_to"]
    assert first[0] == "4" and first[-4:] == [ODD[0], "test", "224x224", "28x28"]
    assert path.read_text().startswith('index,"normal, benign","say ""malignant""",a;b,')
    back = read_table(path)
    assert back.class_names == ODD and back.index == table.index and back.split == "test"
    assert back.predicted == table.predicted and back.resized_to == table.resized_to
    np.testing.assert_array_equal(back.scores, scores)  # repr: every bit kept
    got, names = read_for_evaluate(path, split="test")
    assert names == ODD
    np.testing.assert_array_equal(got, scores[::-1])  # ordered by index


def test_medmnist_files_still_read(tmp_path):
    path = tmp_path / "m.csv"
    scores = np.array([[0.2, 0.8], [0.6, 0.4]])
    write_predictions(path, scores)
    got, names = read_for_evaluate(path, split="test")
    assert names is None
    np.testing.assert_array_equal(got, scores)


@pytest.mark.parametrize(
    "kind,needle",
    [
        ("split", "holds predictions for the val split; pass --split val"),
        ("files", "row 'sub/0.png' is an image file, not an index in a split"),
        ("repeat", "the index column is not 0..2, each once"),
        ("gap", "the index column is not 0..2, each once"),
        ("cells", "line 3 has 7 cells, the header 8"),
        ("number", "a probability is not a number"),
    ],
)
def test_what_evaluate_cannot_score_is_one_error(tmp_path, kind, needle):
    scores = np.full((3, 3), 1 / 3)
    index = {"files": ["sub/0.png", "sub/1.png", "x.png"], "repeat": ["0", "1", "1"],
             "gap": ["0", "1", "5"]}.get(kind)  # fmt: skip
    text = to_text(_table(scores, index=index, split="val" if kind == "split" else "test"))
    lines = text.splitlines()
    if kind == "cells":
        lines[2] = lines[2].rsplit(",", 1)[0]
    if kind == "number":
        lines[1] = lines[1].replace("0.3333333333333333", "abc", 1)
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchError) as err:
        read_for_evaluate(path, split="test")
    assert needle in str(err.value)


def _dataset(tmp_path, names):
    npz = make_npz(tmp_path / "d.npz", counts=(8, 8, 12))
    npz.with_name(npz.name + ".json").write_text(json.dumps({"task": "binary-class",
                                                             "class_names": names}))  # fmt: skip
    return npz


def test_evaluate_scores_a_predict_csv_as_the_medmnist_file(tmp_path, capsys):
    names = ["normal, benign", "malignant"]
    npz = _dataset(tmp_path, names)
    labels = np.load(npz)["test_labels"]
    p1 = np.clip(labels[:, 0] * 0.5 + np.linspace(0.1, 0.45, len(labels)), 0, 1)
    scores = np.stack([1 - p1, p1], axis=1)
    order = np.random.default_rng(1).permutation(len(scores))  # rows in any order
    path = tmp_path / "p.csv"
    path.write_text(to_text(_table(scores[order], names=names, index=[str(i) for i in order])))
    assert main(["evaluate", "--dataset", f"npz:{npz}", "--predictions", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["auc"] == auc(labels, scores, "binary-class") and out["n"] == 12
    assert out["acc"] == acc(labels, scores, "binary-class")
    # the classes are checked against the dataset's
    other = _dataset(tmp_path / "o", ["benign", "malignant"])
    assert main(["evaluate", "--dataset", f"npz:{other}", "--predictions", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'error: {path}: classes ["normal, benign", "malignant"] but npz:{other} has '
                   '["benign", "malignant"]; give predictions for this dataset']  # fmt: skip


def test_resize_notice_names_sizes_and_filter():
    from bench.saved.inputs import Inputs
    from bench.saved.predict import resize_notice

    images = np.zeros((4, 28, 28), np.uint8)
    same = Inputs(names=("a", "b", "c", "d"), images=images, split="", shapes=((28, 28),) * 4)
    assert resize_notice(same) is None
    mixed = Inputs(names=("a", "b", "c", "d"), images=images, split="",
                   shapes=((224, 224), (28, 28), (56, 40), (224, 224)))  # fmt: skip
    assert resize_notice(mixed) == (
        "note: resized 3 of 4 inputs from 224x224, 56x40 to 28x28, the run's data size, with "
        "PIL bilinear (Image.resize, antialiased when shrinking)"
    )


def test_resize_filter_is_antialiased_as_documented():
    """A one-pixel checkerboard shrunk 8x averages to grey (a point-sampled bilinear resize
    would keep black and white pixels)."""
    from PIL import Image

    from bench.data.folder import resize_image

    board = ((np.indices((224, 224)).sum(0) % 2) * 255).astype(np.uint8)
    small = np.asarray(resize_image(Image.fromarray(board), 28)).astype(int)
    assert small.shape == (28, 28) and np.abs(small - 127.5).max() < 4
