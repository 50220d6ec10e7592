"""``npz:PATH``: any npz in MedMNIST layout. The task is read from an optional sidecar
``PATH.json`` ({"task": ..., "class_names": [...]}) or inferred from the labels."""

from __future__ import annotations

import json
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench.data.info import medmnist_flag
from bench.data.spec import MULTI_LABEL, DatasetSpec, check_size
from bench.data.splits import Splits
from bench.errors import DataError

TASKS = ("multi-class", "binary-class", MULTI_LABEL, "ordinal-regression")


def _sidecar(path: Path) -> dict:
    side = path.with_name(path.name + ".json")
    if not side.is_file():
        return {}
    try:
        meta = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{side}: not valid JSON ({exc})") from None
    if meta.get("task", TASKS[0]) not in TASKS:
        raise DataError(f"{side}: task {meta['task']!r} is not one of {', '.join(TASKS)}")
    return meta


def image_layout(shape: tuple[int, ...], path: Path) -> tuple[int, int]:
    """(ndim, n_channels) from a train_images shape: (N,H,W) and (N,H,W,C) are 2D images,
    (N,D,H,W) with D == H == W and (N,D,H,W,C) are 3D volumes."""
    if len(shape) == 3:
        return 2, 1
    if len(shape) == 4 and shape[3] in (1, 3) and shape[1] == shape[2] != shape[3]:
        return 2, int(shape[3])
    if len(shape) == 4 and shape[1] == shape[2] == shape[3]:
        return 3, 1
    if len(shape) == 5 and shape[4] in (1, 3):
        return 3, int(shape[4])
    raise DataError(
        f"{path}: train_images has shape {shape}; expected (N,H,W), (N,H,W,C), (N,D,H,W) or "
        '(N,D,H,W,C), or give "ndim" and "n_channels" in a sidecar PATH.json'
    )


def array_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shape of every array in an npz, read from the .npy headers (no array is loaded)."""
    shapes = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.endswith(".npy"):
                with zf.open(name) as f:
                    version = np.lib.format.read_magic(f)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shapes[name[: -len(".npy")]] = tuple(read(f)[0])
    return shapes


@lru_cache(maxsize=16)
def npz_spec(path: Path) -> DatasetSpec:
    """Describe the npz at ``path`` from its arrays (and its sidecar JSON, if any)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise DataError(f"npz dataset {path} does not exist; give the path of an .npz file")
    try:
        shapes = array_shapes(path)
        npz = np.load(path, allow_pickle=False)
        labels = np.concatenate(
            [
                npz[f"{s}_labels"].reshape(len(npz[f"{s}_labels"]), -1)
                for s in ("train", "val", "test")
            ]
        )
        counts = {s: int(shapes[f"{s}_images"][0]) for s in ("train", "val", "test")}
        train_shape = shapes["train_images"]
    except KeyError as exc:
        raise DataError(
            f"{path}: missing array {exc} (MedMNIST layout: train/val/test _images and _labels)"
        ) from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read as npz ({type(exc).__name__}: {exc})") from None
    meta = _sidecar(path)
    if labels.shape[1] > 1:
        task, n = MULTI_LABEL, labels.shape[1]
    else:
        n = int(labels.max()) + 1
        task = "binary-class" if n == 2 else "multi-class"
    task = meta.get("task", task)
    names = tuple(meta.get("class_names") or (str(i) for i in range(n)))
    if "ndim" in meta and "n_channels" in meta:
        ndim, channels = int(meta["ndim"]), int(meta["n_channels"])
    else:
        ndim, channels = image_layout(train_shape, path)
        ndim, channels = int(meta.get("ndim", ndim)), int(meta.get("n_channels", channels))
    size = int(train_shape[1])
    return DatasetSpec(
        name=f"npz:{path}",
        task=task,
        n_channels=channels,
        class_names=names,
        n_samples=counts,
        sizes=(size,),
        kind="npz",
        ndim=ndim,
        path=str(path),
        title=path.stem,
        published_as=medmnist_flag(path.stem),
    )


def load_npz(spec: DatasetSpec, size: int) -> Splits:
    """Read the npz behind an ``npz:`` spec."""
    from bench.data.medmnist import read_npz

    check_size(spec, size)
    return read_npz(Path(spec.path), spec, size, mmap=size >= 224)
