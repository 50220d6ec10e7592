"""Dataset catalog, MedMNIST files on disk (MD5), image folders (split, cache, bad images),
and npz datasets (sidecar task, 3D layout)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TASK_LABELS, make_folder, make_npz
from medmnist import INFO
from PIL import Image

from bench.data.builtin import MEDICAL_MNIST_CLASSES, MEDICAL_MNIST_COUNTS
from bench.data.catalog import get_dataset, list_datasets
from bench.data.folder import list_images, split_assignment, split_sizes
from bench.data.load import load_splits
from bench.data.medmnist import find_file, read_npz
from bench.errors import BenchError, DataError
from bench.listing import on_disk
from bench.results.predictions import write_predictions

SPLITS = ("train", "val", "test")


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    """Folder caches go to tmp_path, never to ~/.cache; no BENCH_DATA_DIR leaks in."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)


def digest(splits) -> str:
    """sha256 over every split's images and labels."""
    h = hashlib.sha256()
    for name in SPLITS:
        part = getattr(splits, name)
        h.update(np.ascontiguousarray(part.images).tobytes())
        h.update(np.ascontiguousarray(part.labels).tobytes())
    return h.hexdigest()


def one_error_line(result) -> str:
    """The single stderr line of a user error (exit 2, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- catalog --------------------------------------------------------------------------------


def test_catalog_equals_medmnist_info():
    assert len(INFO) == 18
    names = [s.name for s in list_datasets()]
    assert names[:18] == list(INFO)
    assert "medical_mnist" in names
    for flag, info in INFO.items():
        spec = get_dataset(flag)
        assert spec.task == info["task"], flag
        assert spec.n_channels == info["n_channels"], flag
        assert spec.n_classes == len(info["label"]), flag
        assert spec.class_names == tuple(info["label"][str(i)] for i in range(spec.n_classes))
        assert spec.n_samples == info["n_samples"], flag
        assert spec.ndim == (3 if flag.endswith("3d") else 2)
        assert spec.md5[28] == info["MD5"]
        assert spec.sizes == ((28, 64) if spec.ndim == 3 else (28, 64, 128, 224)), flag
        assert all(spec.md5[s] == info[f"MD5_{s}"] for s in spec.sizes if s != 28)


def test_medical_mnist_split_sizes_are_what_the_split_produces():
    """The catalog's counts equal the split of the 58,954 Kaggle file names."""
    assert sum(MEDICAL_MNIST_COUNTS.values()) == 58954
    files = tuple(
        f"{cls}/{i:06d}.jpeg" for cls, n in MEDICAL_MNIST_COUNTS.items() for i in range(n)
    )
    labels = np.repeat(np.arange(6), list(MEDICAL_MNIST_COUNTS.values()))
    split = split_assignment(files, labels)
    counts = {name: int((split == k).sum()) for k, name in enumerate(SPLITS)}
    spec = get_dataset("medical_mnist")
    assert counts == spec.n_samples == {"train": 41268, "val": 8843, "test": 8843}
    assert spec.class_names == MEDICAL_MNIST_CLASSES and spec.task == "multi-class"
    breast = labels == MEDICAL_MNIST_CLASSES.index("BreastMRI")
    assert np.bincount(split[breast]).tolist() == [6268, 1343, 1343]


def test_split_sizes_rule():
    assert split_sizes(10000) == (7000, 1500, 1500)
    assert split_sizes(8954) == (6268, 1343, 1343)
    assert split_sizes(4) == (2, 1, 1)
    assert split_sizes(10) == (6, 2, 2)


def test_datasets_json_lists_every_dataset(run_bench):
    r = run_bench("datasets", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert set(INFO) | {"medical_mnist"} <= set(rows)
    for flag, info in INFO.items():
        row = rows[flag]
        assert row["task"] == info["task"]
        assert row["n_channels"] == info["n_channels"]
        assert row["n_classes"] == len(info["label"])
        assert row["n_samples"] == info["n_samples"]
    assert rows["medical_mnist"]["n_samples"] == {"train": 41268, "val": 8843, "test": 8843}
    assert rows["medical_mnist"]["n_classes"] == 6
    # a folder is resized on load: any --size in the range, beside its native size
    assert rows["medical_mnist"]["size_range"] == [8, 1024]
    assert rows["medical_mnist"]["sizes"] == [64]
    assert rows["breastmnist"]["size_range"] is None
    table = run_bench("datasets")
    assert "8-1024 (native 64)" in table.stdout


def test_datasets_marks_files_on_disk(run_bench, shared_data):
    r = run_bench("datasets", "--json", "--data-dir", shared_data)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["breastmnist"]["on_disk"] == [28]
    assert rows["pneumoniamnist"]["on_disk"] == [28]
    assert rows["adrenalmnist3d"]["on_disk"] == [28, 64]
    assert rows["pathmnist"]["on_disk"] == []
    table = run_bench("datasets", "--data-dir", shared_data)
    assert table.returncode == 0, table.stderr
    line = next(ln for ln in table.stdout.splitlines() if "│ breastmnist " in ln)
    assert line.rstrip("│ ").endswith("28")


def test_datasets_empty_data_dir_has_nothing_on_disk(tmp_path):
    assert on_disk(get_dataset("breastmnist"), tmp_path) == []
    assert on_disk(get_dataset("medical_mnist"), tmp_path) == []


# --- MedMNIST files: MD5 and missing files ---------------------------------------------------


def _predictions(tmp_path: Path, n: int, width: int = 2) -> Path:
    scores = np.random.default_rng(0).random((n, width))
    path = tmp_path / "preds.csv"
    write_predictions(path, scores / scores.sum(axis=1, keepdims=True))
    return path


def test_wrong_file_is_refused_with_md5_mismatch(run_bench, tmp_path):
    data = tmp_path / "data"
    make_npz(data / "breastmnist.npz", counts=(6, 3, 3))
    r = run_bench(
        "evaluate", "--dataset", "breastmnist", "--data-dir", data,
        "--predictions", _predictions(tmp_path, 3),
    )  # fmt: skip
    line = one_error_line(r)
    assert str(data / "breastmnist.npz") in line and "MD5 mismatch" in line


def test_one_byte_changed_is_refused(run_bench, shared_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    raw = bytearray((shared_data / "breastmnist.npz").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (data / "breastmnist.npz").write_bytes(bytes(raw))
    spec = get_dataset("breastmnist")
    assert find_file(spec, 28, shared_data) == shared_data / "breastmnist.npz"
    with pytest.raises(DataError, match="MD5 mismatch"):
        find_file(spec, 28, data)
    r = run_bench(
        "evaluate", "--dataset", "breastmnist", "--data-dir", data,
        "--predictions", _predictions(tmp_path, 156),
    )  # fmt: skip
    line = one_error_line(r)
    assert str(data / "breastmnist.npz") in line and "MD5 mismatch" in line


def test_missing_file_is_one_line(run_bench, tmp_path):
    r = run_bench(
        "evaluate", "--dataset", "pneumoniamnist", "--data-dir", tmp_path,
        "--predictions", _predictions(tmp_path, 624),
    )  # fmt: skip
    line = one_error_line(r)
    assert f"pneumoniamnist.npz not found in {tmp_path}" in line
    with pytest.raises(DataError, match="breastmnist has no size 32"):
        find_file(get_dataset("breastmnist"), 32, tmp_path)


def test_data_dir_from_environment(shared_data, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(shared_data))
    splits = load_splits("breastmnist")
    assert [len(getattr(splits, s)) for s in SPLITS] == [546, 78, 156]
    assert splits.train.images.dtype == np.uint8 and splits.train.labels.dtype == np.int64
    assert splits.test.labels.shape == (156, 1)


# --- image folders ---------------------------------------------------------------------------


def test_folder_spec_from_the_images(tmp_path):
    root = make_folder(tmp_path / "three", {"b": 10, "a": 12, "c": 20})
    spec = get_dataset(f"folder:{root}")
    assert spec.class_names == ("a", "b", "c") and spec.task == "multi-class"
    assert spec.n_channels == 1 and spec.sizes == (16,) and spec.kind == "folder"
    assert spec.n_samples == {"train": 8 + 6 + 14, "val": 2 + 2 + 3, "test": 2 + 2 + 3}
    rgb = get_dataset(f"folder:{make_folder(tmp_path / 'rgb', {'x': 4, 'y': 4}, mode='RGB')}")
    assert rgb.task == "binary-class" and rgb.n_channels == 3
    wide = make_folder(tmp_path / "wide", {"x": 4, "y": 4}, size=(20, 12))
    assert get_dataset(f"folder:{wide}").sizes == (64,)


def test_folder_split_is_fixed_stratified_and_cached(tmp_path):
    root = make_folder(tmp_path / "imgs", {"cat": 10, "dog": 13, "eel": 7})
    name = f"folder:{root}"
    first = load_splits(name)
    assert first.data_size == 16 and first.train.images.shape[1:] == (16, 16)
    for k, split in enumerate(SPLITS):
        counts = np.bincount(getattr(first, split).labels[:, 0], minlength=3).tolist()
        assert counts == [split_sizes(n)[k] for n in (10, 13, 7)]
    assert sum(len(getattr(first, s)) for s in SPLITS) == 30
    cache = tmp_path / "cache" / "folders"
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].endswith(".npz")  # no temporary file left behind
    with np.load(cache / files[0]) as z:
        listing = list_images(root.resolve())
        assert z["split"].tolist() == split_assignment(listing.files, listing.labels).tolist()
    assert digest(load_splits(name)) == digest(first)  # from the cache
    shutil.rmtree(cache)
    assert digest(load_splits(name)) == digest(first)  # decoded again
    assert len(list(cache.iterdir())) == 1


def test_folder_split_is_the_same_in_another_process(tmp_path):
    root = make_folder(tmp_path / "imgs", {"a": 8, "b": 9})
    code = (
        "import sys, hashlib, numpy as np; from bench.data.load import load_splits; "
        f"s = load_splits('folder:{root}'); h = hashlib.sha256(); "
        "[h.update(np.ascontiguousarray(a).tobytes()) for p in (s.train, s.val, s.test) "
        "for a in (p.images, p.labels)]; print(h.hexdigest())"
    )
    runs = []
    for i in range(2):
        env = {"BENCH_CACHE_DIR": str(tmp_path / f"cache{i}"), "PATH": "/usr/bin:/bin"}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        runs.append(out.stdout.strip())
    assert runs[0] == runs[1] == digest(load_splits(f"folder:{root}"))


def test_folder_changed_file_gets_a_new_cache(tmp_path):
    root = make_folder(tmp_path / "imgs", {"a": 5, "b": 5})
    before = digest(load_splits(f"folder:{root}"))
    make_folder(root, {"a": 1}, seed=7)  # rewrites a/img000.jpeg with other pixels
    after = digest(load_splits(f"folder:{root}"))
    assert after != before
    assert len(list((tmp_path / "cache" / "folders").iterdir())) == 2


def test_folder_resizes_to_the_data_size(tmp_path):
    root = make_folder(tmp_path / "imgs", {"a": 4, "b": 4})
    make_folder(root, {"b": 2}, size=(20, 12), seed=3)  # two odd-sized images
    assert load_splits(f"folder:{root}").train.images.shape[1:] == (16, 16)
    splits = load_splits(f"folder:{root}", size=8)
    assert splits.data_size == 8 and splits.test.images.shape[1:] == (8, 8)
    rgb = make_folder(tmp_path / "rgb", {"a": 4, "b": 4}, mode="RGB")
    assert load_splits(f"folder:{rgb}", size=12).val.images.shape[1:] == (12, 12, 3)
    with pytest.raises(DataError, match="size 4 is out of range"):
        load_splits(f"folder:{root}", size=4)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_is_named(tmp_path, damage):
    root = make_folder(tmp_path / "imgs", {"a": 6, "b": 6})
    bad = root / "b" / "img003.jpeg"
    raw = bad.read_bytes()
    bad.write_bytes(b"this is not a jpeg" if damage == "garbage" else raw[: len(raw) // 2])
    with pytest.raises(DataError) as err:
        load_splits(f"folder:{root}")
    msg = str(err.value)
    assert msg.startswith(f"{bad}: cannot decode image") and "\n" not in msg


def test_corrupt_image_cli_one_line(run_bench, tmp_path):
    root = make_folder(tmp_path / "imgs", {"a": 6, "b": 6})
    bad = root / "a" / "img002.jpeg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 broken")
    r = run_bench(
        "evaluate", "--dataset", f"folder:{root}", "--predictions", _predictions(tmp_path, 2)
    )
    line = one_error_line(r)
    assert line.startswith(f"error: {bad.resolve()}: cannot decode image")
    assert "Traceback" not in r.stderr


def test_wrong_image_mode_is_named(tmp_path):
    root = make_folder(tmp_path / "mixed", {"a": 5, "b": 5})
    rgb = root / "b" / "img001.jpeg"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(rgb)
    with pytest.raises(DataError, match="image mode RGB, but this dataset's images are L") as e:
        load_splits(f"folder:{root}")
    assert str(e.value).startswith(str(rgb)) and "convert" in str(e.value)
    cmyk_root = make_folder(tmp_path / "cmyk", {"a": 5, "b": 5})
    cmyk = cmyk_root / "a" / "img000.jpeg"
    Image.new("CMYK", (16, 16)).save(cmyk)
    with pytest.raises(DataError, match="image mode CMYK is not supported") as e:
        get_dataset(f"folder:{cmyk_root}")
    assert str(e.value).startswith(str(cmyk))


def test_folder_layout_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        get_dataset(f"folder:{tmp_path / 'nope'}")
    one = make_folder(tmp_path / "one", {"only": 5})
    (one / ".hidden").mkdir()
    with pytest.raises(DataError, match="1 class subfolder"):
        get_dataset(f"folder:{one}")
    few = make_folder(tmp_path / "few", {"a": 5, "b": 3})
    (few / "b" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"b: 3 image\(s\)"):
        get_dataset(f"folder:{few}")


@pytest.mark.parametrize("layout", ["medical_mnist", "Medical MNIST", "."])
def test_medical_mnist_found_in_data_dir(tmp_path, layout):
    data = tmp_path / "data"
    make_folder(data / layout, {c: 5 for c in MEDICAL_MNIST_CLASSES}, size=(64, 64))
    spec = get_dataset("medical_mnist")
    assert on_disk(spec, data) == [64]
    splits = load_splits("medical_mnist", data_dir=data)
    assert splits.data_size == 64 and splits.spec.n_samples == {"train": 18, "val": 6, "test": 6}
    assert splits.train.images.shape == (18, 64, 64)
    assert sorted(set(splits.test.labels[:, 0].tolist())) == list(range(6))


def test_medical_mnist_missing_or_wrong(tmp_path):
    with pytest.raises(DataError, match="medical_mnist cannot be downloaded by bench"):
        load_splits("medical_mnist")
    with pytest.raises(DataError, match=f"medical_mnist not found in {tmp_path}"):
        load_splits("medical_mnist", data_dir=tmp_path)
    make_folder(tmp_path, {c: 4 for c in (*MEDICAL_MNIST_CLASSES, "Extra")}, size=(64, 64))
    with pytest.raises(DataError, match="differ from medical_mnist's classes"):
        load_splits("medical_mnist", data_dir=tmp_path)


def test_unknown_dataset_suggests_close_names():
    with pytest.raises(BenchError, match="did you mean breastmnist"):
        get_dataset("breastmnst")


# --- npz: datasets ---------------------------------------------------------------------------


@pytest.mark.parametrize("task", list(TASK_LABELS))
def test_npz_sidecar_task(tiny_npz, task):
    name = tiny_npz(task=task, n_channels=3)
    spec = get_dataset(name)
    assert spec.task == task and spec.n_classes == TASK_LABELS[task]
    assert spec.n_channels == 3 and spec.ndim == 2 and spec.sizes == (28,)
    assert spec.n_samples == {"train": 48, "val": 16, "test": 16}
    splits = load_splits(name)
    assert splits.train.images.shape == (48, 28, 28, 3)
    width = TASK_LABELS[task] if task.startswith("multi-label") else 1
    assert splits.val.labels.shape == (16, width) and splits.val.labels.dtype == np.int64


@pytest.mark.parametrize(
    ("task", "inferred"),
    [
        ("binary-class", "binary-class"),
        ("multi-class", "multi-class"),
        ("multi-label, binary-class", "multi-label, binary-class"),
        ("ordinal-regression", "multi-class"),  # ordinal needs the sidecar to say so
    ],
)
def test_npz_task_inferred_without_sidecar(tmp_path, task, inferred):
    path = make_npz(tmp_path / "x.npz", task=task)
    path.with_name("x.npz.json").unlink()
    spec = get_dataset(f"npz:{path}")
    assert spec.task == inferred and spec.n_classes == TASK_LABELS[task]


@pytest.mark.parametrize(
    ("shape", "ndim", "channels"),
    [
        ((8, 8), 2, 1),
        ((8, 8, 3), 2, 3),
        ((8, 8, 1), 2, 1),
        ((8, 8, 8), 3, 1),
        ((6, 6, 6, 1), 3, 1),
    ],
)
def test_npz_layout_2d_and_3d(tmp_path, shape, ndim, channels):
    arrays = {}
    for split, n in zip(SPLITS, (6, 2, 2), strict=True):
        arrays[f"{split}_images"] = np.zeros((n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2)[:, None].astype(np.uint8)
    np.savez(tmp_path / "v.npz", **arrays)
    spec = get_dataset(f"npz:{tmp_path / 'v.npz'}")
    assert (spec.ndim, spec.n_channels) == (ndim, channels)
    assert load_splits(spec).train.images.shape == (6, *shape)


def test_npz_bad_shape_and_missing(tmp_path):
    arrays = {f"{s}_images": np.zeros((2, 8, 6, 6), np.uint8) for s in SPLITS}
    arrays |= {f"{s}_labels": np.zeros((2, 1), np.uint8) for s in SPLITS}
    np.savez(tmp_path / "odd.npz", **arrays)
    with pytest.raises(DataError, match=r"train_images has shape \(2, 8, 6, 6\)"):
        get_dataset(f"npz:{tmp_path / 'odd.npz'}")
    np.savez(tmp_path / "half.npz", train_images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(DataError, match="missing array"):
        get_dataset(f"npz:{tmp_path / 'half.npz'}")
    with pytest.raises(DataError, match="does not exist"):
        get_dataset(f"npz:{tmp_path / 'none.npz'}")


def test_real_3d_file(shared_data):
    splits = load_splits("adrenalmnist3d", data_dir=shared_data)
    assert splits.spec.ndim == 3 and splits.data_size == 28
    assert splits.train.images.shape == (1188, 28, 28, 28)
    assert [len(getattr(splits, s)) for s in SPLITS] == [1188, 98, 298]


def test_npz_memory_mapped_read(tmp_path):
    """Compressed npz arrays are unpacked once to the cache and mapped from there."""
    path = tmp_path / "c.npz"
    arrays = {f"{s}_images": np.full((3, 8, 8), i, np.uint8) for i, s in enumerate(SPLITS)}
    arrays |= {f"{s}_labels": np.arange(3, dtype=np.uint8)[:, None] % 2 for s in SPLITS}
    np.savez_compressed(path, **arrays)
    spec = get_dataset(f"npz:{path}")
    mapped = read_npz(path, spec, 8, mmap=True)
    plain = read_npz(path, spec, 8)
    assert isinstance(mapped.train.images, np.memmap)
    for s in SPLITS:
        assert np.array_equal(getattr(mapped, s).images, getattr(plain, s).images)
        assert np.array_equal(getattr(mapped, s).labels, getattr(plain, s).labels)
    unpacked = sorted((tmp_path / "cache" / "npy").glob("*/*.npy"))
    assert [p.name for p in unpacked] == sorted(f"{k}.npy" for k in arrays)
    stamps = [p.stat().st_mtime_ns for p in unpacked]
    read_npz(path, spec, 8, mmap=True)
    assert [p.stat().st_mtime_ns for p in unpacked] == stamps  # not unpacked again


def test_breastmnist_is_embedded_and_md5_checked(monkeypatch, run_bench):
    """The one dataset inside the package: loads with no data dir and no network, checked
    against medmnist.INFO's MD5; no other data file ships."""
    import bench.data
    from bench.data.catalog import get_dataset
    from bench.data.medmnist import embedded_file, find_file, md5sum

    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    spec = get_dataset("breastmnist")
    path = find_file(spec, 28, None)
    assert path == embedded_file(spec, 28) and md5sum(path) == spec.md5[28]
    splits = load_splits("breastmnist")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (546, 78, 156)
    assert splits.train.images.shape == (546, 28, 28) and splits.train.images.dtype == np.uint8
    shipped = sorted(p.name for p in Path(bench.data.__file__).parent.rglob("*.npz"))
    assert shipped == ["breastmnist.npz"]
    assert embedded_file(get_dataset("pneumoniamnist"), 28) is None
    assert embedded_file(spec, 64) is None
    r = run_bench("datasets", "--json")
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["breastmnist"]["on_disk"] == [28]
