"""Load ``{flag}{size_flag}.npz`` through the medmnist package (download + MD5) or from
``--data-dir`` / ``BENCH_DATA_DIR`` with the MD5 checked against ``medmnist.INFO``."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from bench.data.cache import cache_root, unpack_member
from bench.data.spec import DatasetSpec, check_size
from bench.data.splits import Split, Splits
from bench.errors import DataError

DATA_DIR_ENV = "BENCH_DATA_DIR"
IMAGE_DIMS = {2: (3, 4), 3: (4, 5)}  # array dimensions of images and of volumes
IMAGE_LAYOUTS = {2: ("(N, H, W)", "(N, H, W, C)"), 3: ("(N, D, H, W)", "(N, D, H, W, C)")}


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """``--data-dir``, else ``$BENCH_DATA_DIR``, else None (use the medmnist package).

    Raises:
        DataError: the folder given does not exist (or is a file).
    """
    value = data_dir or os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a folder"
        given = f"--data-dir {value}" if data_dir else f"{DATA_DIR_ENV}={value}"
        fix = "give the folder that holds the data files" + ("" if data_dir else " or unset it")
        raise DataError(f"{given}: {path} {what}; {fix}")
    return path


def md5sum(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def local_file(spec: DatasetSpec, size: int, data_dir: Path) -> Path | None:
    """The npz for ``spec``/``size`` in ``data_dir``, or None if absent."""
    path = data_dir / spec.file_name(size)
    return path if path.is_file() else None


def verify_md5(spec: DatasetSpec, size: int, path: Path) -> None:
    """Raise a one-line DataError if ``path`` does not have the MD5 medmnist.INFO gives."""
    expected = spec.md5.get(size)
    if expected is None:
        return
    actual = md5sum(path)
    if actual != expected:
        raise DataError(
            f"{path}: MD5 mismatch (got {actual}, medmnist.INFO expects {expected}); "
            "the file is corrupt or not the official release: delete it and fetch it again"
        )


def fetch_with_medmnist(spec: DatasetSpec, size: int) -> Path:
    """Download (with the medmnist package's MD5 check) into its default root."""
    import medmnist
    from medmnist.info import DEFAULT_ROOT, INFO

    cls = getattr(medmnist, INFO[spec.name]["python_class"])
    try:
        cls(split="train", download=True, size=size, root=DEFAULT_ROOT)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"could not download {spec.file_name(size)} with the medmnist package ({first}); "
            f"put the file in a folder and pass --data-dir DIR (or set {DATA_DIR_ENV})"
        ) from None
    return Path(DEFAULT_ROOT) / spec.file_name(size)


def embedded_file(spec: DatasetSpec, size: int) -> Path | None:
    """The copy shipped inside the package (BreastMNIST at 28 px only), or None."""
    from importlib import resources

    path = Path(str(resources.files("bench.data").joinpath("embedded", spec.file_name(size))))
    return path if spec.kind == "medmnist" and path.is_file() else None


def find_file(spec: DatasetSpec, size: int, data_dir: str | os.PathLike | None) -> Path:
    """Path to an MD5-verified npz for ``spec``/``size``: in the data dir when one is given,
    else the copy embedded in the package, else downloaded by the medmnist package."""
    check_size(spec, size)
    root = resolve_data_dir(data_dir)
    if root is not None:
        path = local_file(spec, size, root)
        if path is None:
            raise DataError(
                f"{spec.file_name(size)} not found in {root}; put the official file there "
                f"or drop --data-dir to download it with the medmnist package"
            )
        verify_md5(spec, size, path)
        return path
    embedded = embedded_file(spec, size)
    if embedded is not None:
        verify_md5(spec, size, embedded)
        return embedded
    return fetch_with_medmnist(spec, size)


def mmap_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an npz as read-only memory maps.

    MedMNIST files are compressed, which numpy cannot map, so each array is unpacked once
    to ``$BENCH_CACHE_DIR/npy/`` (keyed by the file's path, size and mtime) and mapped from
    there.
    """
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\t{st.st_size}\t{st.st_mtime_ns}".encode())
    folder = cache_root() / "npy" / f"{path.stem}_{key.hexdigest()[:16]}"
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.endswith(".npy")]
        files = {n[: -len(".npy")]: unpack_member(zf, n, folder / n) for n in names}
    return {k: np.load(f, mmap_mode="r", allow_pickle=False) for k, f in files.items()}


def read_npz(path: Path, spec: DatasetSpec, data_size: int, *, mmap: bool = False) -> Splits:
    """Read a MedMNIST-layout npz into uint8 splits; a bad file is one DataError.

    With ``mmap`` the images are memory-mapped (see ``mmap_arrays``) rather than read whole.
    """
    try:
        npz = mmap_arrays(path) if mmap else np.load(path, allow_pickle=False)
        parts = {}
        for split in ("train", "val", "test"):
            images = npz[f"{split}_images"]
            labels = npz[f"{split}_labels"]
            if images.dtype != np.uint8:
                raise DataError(f"{path}: {split}_images are {images.dtype}, expected uint8")
            if images.ndim not in IMAGE_DIMS[spec.ndim]:
                want = " or ".join(IMAGE_LAYOUTS[spec.ndim])
                raise DataError(
                    f"{path}: {split}_images has shape {images.shape}, but {spec.name} is "
                    f"{spec.ndim}D: expected {want}"
                )
            if labels.ndim == 1:
                labels = labels[:, None]
            parts[split] = Split(images=images, labels=np.asarray(labels, dtype=np.int64))
    except DataError:
        raise
    except KeyError as exc:
        raise DataError(
            f"{path}: missing array {exc} (MedMNIST layout needs train/val/test _images and "
            "_labels)"
        ) from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read as npz ({type(exc).__name__}: {exc})") from None
    return Splits(spec, data_size, parts["train"], parts["val"], parts["test"])


def load_medmnist(spec: DatasetSpec, size: int, data_dir: str | os.PathLike | None) -> Splits:
    """Load a MedMNIST subset; 224 px files are memory-mapped rather than read whole."""
    path = find_file(spec, size, data_dir)
    return read_npz(path, spec, size, mmap=size >= 224)
