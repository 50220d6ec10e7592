"""Image folders as datasets: ``folder:PATH`` and the Kaggle Medical MNIST set.

Layout ``ROOT/<class>/<image>`` (one level; hidden entries and non-image files are
skipped). Classes are the sorted subfolder names: two make a binary-class task, more a
multi-class one. Every image must have the mode of the first one: 8-bit grayscale ``L``
(1 channel) or ``RGB`` (3 channels).

Data size: the side of the first image when it is square, else 64. Loading at a data
size resizes (bilinear) every image that is not already ``size x size``, so ``--size``
may ask for any size from 8 to 1024.

Images are decoded once (PIL, a thread pool) into uint8 arrays and cached as an npz in
``$BENCH_CACHE_DIR/folders`` (default ``~/.cache/bench/folders``), keyed by the folder,
the data size and every file's relative path, byte size and mtime.

The split is fixed, stratified 70/15/15: within each class, files are ordered by
sha256(seed + relative path) and the last round(15%) go to test, the round(15%) before
them to val. It depends only on the file names, never on an RNG, the machine or the run;
the cache stores the indices too.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bench.data.cache import cache_root, say_rebuilt
from bench.data.spec import DatasetSpec, check_size
from bench.data.splits import Split, Splits
from bench.errors import DataError
from bench.files import atomic_path

IMAGE_EXTS = (".jpeg", ".jpg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MODES = {"L": 1, "RGB": 3}
CONVERTIBLE_MODES = ("1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr")  # 8 bits a channel
SPLIT_SEED = "bench-folder-split-v1"
CACHE_VERSION = 1
DEFAULT_SIZE = 64
MIN_PER_CLASS = 4  # smallest class that still puts one image in val and one in test
# Other names a catalog folder dataset may have inside --data-dir.
FOLDER_ALIASES = {"medical_mnist": ("Medical MNIST", "medical-mnist")}
NOTICE_AT = 2000  # announce the one-off decode of folders at least this large
RESIZE_FILTER = "PIL bilinear (Image.resize, antialiased when shrinking)"  # resize_image's


@dataclass(frozen=True)
class Listing:
    """The images of one folder: sorted class names, relative POSIX paths, int labels."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[str, ...]
    labels: np.ndarray
    fingerprint: str = ""  # sha256 of every file's path, byte size and mtime (if asked)

    def counts(self) -> dict[str, int]:
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}


def split_sizes(n: int) -> tuple[int, int, int]:
    """(train, val, test) counts for a class of ``n`` images: 15% rounded half up each."""
    n_val = n_test = (n * 15 + 50) // 100
    return n - n_val - n_test, n_val, n_test


def split_counts(class_counts: dict[str, int]) -> dict[str, int]:
    """Split sizes of a folder with these per-class image counts."""
    sizes = np.array([split_sizes(n) for n in class_counts.values()]).sum(axis=0)
    return {"train": int(sizes[0]), "val": int(sizes[1]), "test": int(sizes[2])}


def split_assignment(files: tuple[str, ...], labels: np.ndarray, seed: str = SPLIT_SEED):
    """0/1/2 (train/val/test) per file: per class, files ordered by sha256(seed/path)."""
    out = np.zeros(len(files), dtype=np.int8)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        order = sorted(idx, key=lambda i: hashlib.sha256(f"{seed}/{files[i]}".encode()).digest())
        n_train, n_val, _ = split_sizes(len(idx))
        out[order[n_train : n_train + n_val]] = 1
        out[order[n_train + n_val :]] = 2
    return out


def list_images(root: Path, *, fingerprint: bool = False) -> Listing:
    """Scan ``root/<class>/<image>``; a folder that is not a dataset is one DataError.

    With ``fingerprint``, also hash every file's relative path, byte size and mtime.
    """
    if not root.is_dir():
        raise DataError(
            f"image folder {root} does not exist; give a folder with one subfolder per class"
        )
    with os.scandir(root) as it:
        classes = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    if len(classes) < 2:
        raise DataError(
            f"{root}: {len(classes)} class subfolder(s) found; a folder dataset needs one "
            "subfolder of images per class, at least 2"
        )
    files: list[str] = []
    labels: list[int] = []
    h = hashlib.sha256()
    for i, cls in enumerate(classes):
        with os.scandir(root / cls) as it:
            entries = sorted(
                (e for e in it if os.path.splitext(e.name)[1].lower() in IMAGE_EXTS),
                key=lambda e: e.name,
            )
        entries = [e for e in entries if not e.name.startswith(".") and e.is_file()]
        names = [e.name for e in entries]
        if len(names) < MIN_PER_CLASS:
            raise DataError(
                f"{root / cls}: {len(names)} image(s) ({'/'.join(IMAGE_EXTS)}); each class "
                f"needs at least {MIN_PER_CLASS} for a 70/15/15 split: add images or remove it"
            )
        files += [f"{cls}/{n}" for n in names]
        labels += [i] * len(names)
        if fingerprint:
            for e in entries:
                st = e.stat()
                h.update(f"\n{cls}/{e.name}\t{st.st_size}\t{st.st_mtime_ns}".encode())
    return Listing(
        root,
        tuple(classes),
        tuple(files),
        np.asarray(labels, dtype=np.int64),
        h.hexdigest() if fingerprint else "",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _mode_error(path: Path, mode: str, expected: str | None) -> DataError:
    if mode in MODES and expected is not None:
        return DataError(
            f"{path}: image mode {mode}, but this dataset's images are {expected}; "
            f"convert every image to one mode, e.g. PIL Image.open(f).convert('{expected}')"
            ".save(f)"
        )
    return DataError(
        f"{path}: image mode {mode} is not supported; convert it to 8-bit grayscale 'L' or "
        "'RGB', e.g. PIL Image.open(f).convert('RGB').save(f)"
    )


def resize_image(im, size: int):
    """A PIL image to ``size x size`` (:data:`RESIZE_FILTER`): the one resize of images loaded
    at a data size, for folder datasets and ``bench predict`` alike."""
    from PIL import Image

    return im.resize((size, size), Image.Resampling.BILINEAR)


def decode_image(path: Path, mode: str, size: int, *, convert: bool = False) -> np.ndarray:
    """One image as uint8 (size, size[, 3]); resized (:func:`resize_image`) only if not already
    that size.
    With ``convert`` (``bench predict``), an 8-bit image of another mode is converted."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode != mode and not convert:
                raise _mode_error(path, im.mode, mode)
            if im.mode != mode and im.mode not in CONVERTIBLE_MODES:
                raise DataError(
                    f"{path}: image mode {im.mode} cannot be converted to 8-bit '{mode}'; "
                    f"convert it first, e.g. scale it to 8 bits and save it as '{mode}'"
                )
            im = im.convert(mode) if im.mode != mode else im
            im.load()
            if im.size != (size, size):
                im = resize_image(im, size)
            return np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"{path}: cannot decode image ({_first_line(exc)}); delete or replace the file"
        ) from None


def probe_image(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) from the image header; unsupported modes are a DataError."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            mode, wh = im.mode, im.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"{path}: cannot decode image ({_first_line(exc)}); delete or replace the file"
        ) from None
    if mode not in MODES:
        raise _mode_error(path, mode, None)
    return mode, wh


def decode_all(listing: Listing, mode: str, size: int) -> np.ndarray:
    """Every image of ``listing`` as one uint8 array, decoded by a thread pool.

    The first bad image in file order is the one reported.
    """
    n = len(listing.files)
    shape = (n, size, size) if MODES[mode] == 1 else (n, size, size, 3)
    out = np.empty(shape, dtype=np.uint8)

    def work(start: int) -> None:
        for i in range(start, min(start + 256, n)):
            out[i] = decode_image(listing.root / listing.files[i], mode, size)

    workers = min(8, os.cpu_count() or 2)
    ex = ThreadPoolExecutor(max_workers=workers)
    try:
        for _ in ex.map(work, range(0, n, 256)):
            pass
    except BaseException:
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
    return out


def cache_path(listing: Listing, mode: str, size: int) -> Path:
    """Cache file for this folder, mode and size; the name changes with any file change."""
    assert listing.fingerprint, "list_images(..., fingerprint=True) is needed for the cache"
    key = [CACHE_VERSION, str(listing.root), mode, size, SPLIT_SEED, listing.fingerprint]
    h = hashlib.sha256(json.dumps(key).encode())
    slug = "".join(ch if ch.isalnum() else "_" for ch in listing.root.name)[:40] or "root"
    return cache_root() / "folders" / f"{slug}_{size}_{h.hexdigest()[:16]}.npz"


def _read_cache(path: Path, listing: Listing) -> tuple[np.ndarray, np.ndarray] | None:
    """(images, split) from a cache file, or None when absent or unusable."""
    if not path.is_file():
        return None
    try:  # reading a member to its end checks its zip CRC-32: a flipped byte is BadZipFile
        with np.load(path, allow_pickle=False) as z:
            images, split, files = z["images"], z["split"], z["files"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        say_rebuilt(path, f"corrupt ({str(exc).strip() or type(exc).__name__})")
        return None
    if len(images) != len(listing.files) or tuple(files.tolist()) != listing.files:
        say_rebuilt(path, "not a cache of this folder's files")
        return None
    return images, split


def _write_cache(path: Path, listing: Listing, images: np.ndarray, split: np.ndarray) -> None:
    """Write the cache atomically (through a temporary file); a cache that can't be written
    is skipped."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                images=images,
                labels=listing.labels,
                split=split,
                files=np.array(listing.files),
                classes=np.array(listing.classes),
            )
    except OSError as exc:
        print(f"warning: could not cache {listing.root} in {path}: {exc}", file=sys.stderr)


def _find_catalog_folder(spec: DatasetSpec, data_dir: Path) -> Path | None:
    """``DIR/<name>``, ``DIR/<alias>`` or ``DIR`` itself, whichever holds every class folder."""
    for cand in (
        data_dir / spec.name,
        *(data_dir / a for a in FOLDER_ALIASES.get(spec.name, ())),
        data_dir,
    ):
        if all((cand / c).is_dir() for c in spec.class_names):
            return cand
    return None


def folder_on_disk(spec: DatasetSpec, root: Path | None) -> bool:
    """Whether the folder behind ``spec`` exists (``root``: the data dir, for catalog ones)."""
    if spec.path is not None:
        return Path(spec.path).is_dir()
    return root is not None and _find_catalog_folder(spec, Path(root)) is not None


def folder_root(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> Path:
    """The image folder of ``spec``: its path, or found in ``--data-dir`` for catalog ones."""
    if spec.path is not None:
        return Path(spec.path)
    from bench.data.medmnist import DATA_DIR_ENV, resolve_data_dir

    root = resolve_data_dir(data_dir)
    found = _find_catalog_folder(spec, root) if root is not None else None
    if found is None:
        where = f"not found in {root}" if root is not None else "cannot be downloaded by bench"
        raise DataError(
            f"{spec.name} {where}; unzip it so that DIR/{spec.name}/<class>/ holds the images "
            f"(classes {', '.join(spec.class_names)}) and pass --data-dir DIR "
            f"(or set {DATA_DIR_ENV})"
        )
    return found


def folder_spec(path: Path) -> DatasetSpec:
    """Describe ``folder:PATH`` from its class subfolders and its first image."""
    listing = list_images(Path(path).expanduser().resolve())
    first = listing.root / listing.files[0]
    mode, (w, h) = probe_image(first)
    n = len(listing.classes)
    return DatasetSpec(
        name=f"folder:{listing.root}",
        task="binary-class" if n == 2 else "multi-class",
        n_channels=MODES[mode],
        class_names=listing.classes,
        n_samples=split_counts(listing.counts()),
        sizes=(w if w == h else DEFAULT_SIZE,),
        kind="folder",
        path=str(listing.root),
    )


def load_folder(spec: DatasetSpec, size: int, data_dir: str | os.PathLike | None) -> Splits:
    """Decode (or read from the cache) a folder dataset at ``size`` and split it 70/15/15."""
    check_size(spec, size)
    listing = list_images(folder_root(spec, data_dir).expanduser().resolve(), fingerprint=True)
    if listing.classes != tuple(spec.class_names):
        raise DataError(
            f"{listing.root}: class folders {', '.join(listing.classes)} differ from "
            f"{spec.name}'s classes {', '.join(spec.class_names)}; point at the right folder"
        )
    mode = {v: k for k, v in MODES.items()}[spec.n_channels]
    path = cache_path(listing, mode, size)
    cached = _read_cache(path, listing)
    if cached is None:
        if len(listing.files) >= NOTICE_AT:
            print(
                f"decoding {len(listing.files)} images in {listing.root} once "
                f"(cached in {path.parent})",
                file=sys.stderr,
            )
        images = decode_all(listing, mode, size)
        split = split_assignment(listing.files, listing.labels)
        _write_cache(path, listing, images, split)
    else:
        images, split = cached
    parts = [
        Split(images=images[split == k], labels=listing.labels[split == k][:, None])
        for k in range(3)
    ]
    counts = {s: len(p) for s, p in zip(("train", "val", "test"), parts, strict=True)}
    spec = replace(spec, n_samples=counts)
    return Splits(spec, size, *parts)
