"""The listings (``bench datasets``, ``models``, ``spaces``): at 80 columns every name a user
types is whole and no line is longer; ``--format json|csv`` hold the catalog's values, and
``--json`` is still ``--format json``."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from bench.augment.registry import list_augmentations
from bench.cli import main
from bench.data.catalog import list_datasets
from bench.models.registry import list_models
from bench.search.spaces import all_space_files, default_space_dir, load_space_file
from bench.terminal import Column, fit_table


def listing(capsys, monkeypatch, *argv: str, columns: int | None = None) -> str:
    if columns is not None:
        monkeypatch.setenv("COLUMNS", str(columns))
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def whole(name: str, text: str) -> bool:
    """``name`` appears in ``text`` as one word (not cut, not only inside a longer name)."""
    return re.search(rf"(?<![\w:.-]){re.escape(name)}(?![\w.…-])", text) is not None


@pytest.mark.parametrize("columns", [80, 60])
def test_datasets_at_a_narrow_terminal_show_every_name_whole(capsys, monkeypatch, columns):
    out = listing(capsys, monkeypatch, "datasets", columns=columns)
    names = [spec.name for spec in list_datasets()]
    assert len(names) >= 19
    assert [n for n in names if not whole(n, out)] == []
    assert max(map(len, out.splitlines())) <= columns
    assert "…" not in out
    caption = " ".join(out.split()[out.split().index("shown") :])
    assert caption.startswith(f"shown at {columns} columns: dim,") and "train, val, test" in caption


@pytest.mark.parametrize("columns", [80, 60])
def test_models_at_a_narrow_terminal_show_every_family_whole(capsys, monkeypatch, columns):
    out = listing(capsys, monkeypatch, "models", columns=columns)
    names = list_models() + list_augmentations()
    assert {"resnet18_2_5d", "small_cnn3d", "autoaugment_imagenet"} <= set(names)
    assert [n for n in names if not whole(n, out)] == []
    assert max(map(len, out.splitlines())) <= columns
    assert "…" not in out


def test_models_name_each_space_file_in_the_folder_in_use(capsys, monkeypatch, tmp_path):
    """At 80 columns the search space column fits: each file named within the space folder
    in use, the package's or ``--spaces DIR``'s (where a family without a file has none)."""
    monkeypatch.chdir(tmp_path)  # not a checkout: the package's folder is far away
    out = listing(capsys, monkeypatch, "models", columns=80)
    for name in ("small_cnn", "resnet18_2_5d"):
        assert re.search(rf"│ {name}\.yaml +│", out), out
    (tmp_path / "small_cnn.yaml").write_text("family: small_cnn\n")
    rows = json.loads(listing(capsys, monkeypatch, "models", "--spaces", str(tmp_path),
                              "--format", "json"))  # fmt: skip
    spaces = {r["name"]: r["search_space"] for r in rows if r["kind"] == "model"}
    assert spaces["small_cnn"] == str(tmp_path.resolve() / "small_cnn.yaml")
    assert spaces["resnet18"] is None


def test_a_wide_terminal_shows_every_column(capsys, monkeypatch):
    out = listing(capsys, monkeypatch, "datasets", columns=200)
    assert "not shown" not in out
    header = next(line for line in out.splitlines() if " name " in line)
    assert re.findall(r"\w[\w ]*\w|\w", header.replace("┃", "|")) == [
        "name",
        "dim",
        "task",
        "ch",
        "classes",
        "train",
        "val",
        "test",
        "sizes",
        "on disk",
    ]
    breast = next(line for line in out.splitlines() if "│ breastmnist " in line)
    assert [c.strip() for c in breast.split("│")[1:-1]] == [
        "breastmnist",
        "2D",
        "binary-class",
        "1",
        "2",
        "546",
        "78",
        "156",
        "28 64 128 224",
        "28",
    ]


def test_fit_table_drops_the_least_important_column_first_and_says_so():
    from rich.console import Console

    cols = (Column("name"), Column("extra", drop=2), Column("note", drop=1, wrap=True))
    rows = [("a_long_family_name", "x" * 20, "three short words"), ("b", "y", "one"),
            ("c", "z", "two"), ("d", "w", "four")]  # fmt: skip
    console = Console(width=40, record=True)
    console.print(fit_table("t", cols, rows, width=40))
    lines = console.export_text().splitlines()
    assert "│ a_long_family_name │ three short     │" in lines  # its one long note wraps
    assert "│                    │ words           │" in lines
    assert "x" * 20 not in "".join(lines)
    assert " ".join(" ".join(lines[-2:]).split()) == (
        "not shown at 40 columns: extra (--format csv has all)"
    )
    assert max(map(len, lines)) <= 40


def test_datasets_json_and_csv_hold_the_catalog(capsys, monkeypatch):
    specs = {spec.name: spec for spec in list_datasets()}
    as_json = json.loads(listing(capsys, monkeypatch, "datasets", "--format", "json"))
    assert as_json == json.loads(listing(capsys, monkeypatch, "datasets", "--json"))
    assert [r["name"] for r in as_json] == list(specs)
    rows = list(csv.DictReader(io.StringIO(listing(capsys, monkeypatch, "datasets",
                                                   "--format", "csv"))))  # fmt: skip
    assert [r["name"] for r in rows] == list(specs)
    for r in rows:
        spec = specs[r["name"]]
        assert r["task"] == spec.task
        assert int(r["n_classes"]) == spec.n_classes and int(r["ndim"]) == spec.ndim
        assert r["class_names"].split(";") == list(spec.class_names)
        assert [int(s) for s in r["sizes"].split(";")] == list(spec.sizes)
        for split in ("train", "val", "test"):
            assert int(r[f"n_samples_{split}"]) == spec.n_samples[split]
    breast = next(r for r in rows if r["name"] == "breastmnist")
    assert breast["on_disk"] == "28" and breast["size_range"] == ""  # embedded copy
    chest = next(r for r in rows if r["name"] == "chestmnist")
    assert chest["task"] == "multi-label, binary-class"  # quoted by the csv module


def test_models_csv_lists_every_family_and_augmentation(capsys, monkeypatch):
    rows = list(csv.DictReader(io.StringIO(listing(capsys, monkeypatch, "models",
                                                   "--format", "csv"))))  # fmt: skip
    assert [r["name"] for r in rows if r["kind"] == "model"] == list_models()
    assert [r["name"] for r in rows if r["kind"] == "augmentation"] == list_augmentations()
    resnet = next(r for r in rows if r["name"] == "resnet18")
    assert resnet["sizes"] == "28;64;128;224" and resnet["search_space"].endswith("resnet18.yaml")
    as_json = json.loads(listing(capsys, monkeypatch, "models", "--format", "json"))
    assert [r["name"] for r in as_json] == [r["name"] for r in rows]


def test_spaces_csv_has_one_row_per_parameter(capsys, monkeypatch):
    files = [load_space_file(p) for p in all_space_files(default_space_dir())]
    expected = sum(len(f.fixed) + len(f.params) + sum(map(len, f.when.values())) for f in files)
    rows = list(csv.DictReader(io.StringIO(listing(capsys, monkeypatch, "spaces",
                                                   "--format", "csv"))))  # fmt: skip
    assert len(rows) == expected
    lr = next(r for r in rows if r["file"] == "common.yaml" and r["optuna_name"] == "lr")
    assert (lr["family"], lr["type"]) == ("(common)", "float")
    width = next(r for r in rows if r["optuna_name"].startswith("resnet18."))
    assert width["family"] == "resnet18"
    as_json = json.loads(listing(capsys, monkeypatch, "spaces", "--format", "json"))
    assert as_json == rows


def test_format_rejects_an_unknown_value(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["datasets", "--format", "xml"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "choose from 'table', 'json', 'csv'" in err[0]
