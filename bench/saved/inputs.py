"""Inputs of ``bench predict``: an image file, a folder of images (recursively) or an npz in
MedMNIST layout, converted as a saved model was trained: its channels (grayscale or RGB),
its data size (:func:`~bench.data.folder.resize_image`, as folder datasets are loaded) and,
for volumes, its shape.

What cannot be converted (a 16-bit or float image, a channel count other than 1 or 3, a
volume for an image model) is one DataError naming the file.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.folder import IMAGE_EXTS, decode_image, resize_image
from bench.errors import DataError, one_line


@dataclass(frozen=True)
class Inputs:
    """What :func:`read_inputs` read: one name per image (its index in the npz split, or its
    path relative to the input folder), the converted images, the npz split ("" for image
    files) and each input's spatial shape as read, (H, W) or (D, H, W)."""

    names: tuple[str, ...]
    images: np.ndarray
    split: str
    shapes: tuple[tuple[int, ...], ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """The spatial shape the model is given (the run's data size)."""
        return tuple(self.images.shape[1 : 1 + len(self.shapes[0])])

    def resized(self) -> list[tuple[int, ...]]:
        """The shapes as read of the inputs that were resized, in order."""
        return [s for s in self.shapes if s != self.shape]


def read_inputs(path: Path, *, meta: dict, split: str = "test") -> Inputs:
    """Uint8 images in the layout of the model's data (N, S, S), (N, S, S, 3) or (N, S, S, S),
    with ``S`` the saved data size."""
    path = Path(path)
    if path.suffix.lower() == ".npz" and path.is_file():
        return _read_npz(path, meta, split)
    if meta["ndim"] == 3:
        raise DataError(f"{path}: this model takes volumes; give an npz of (N, D, H, W) arrays")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS
                       and p.is_file() and not p.name.startswith("."))  # fmt: skip
        if not files:
            raise DataError(f"{path}: no images ({'/'.join(IMAGE_EXTS)}) in this folder or below")
        names = [p.relative_to(path).as_posix() for p in files]
    elif path.is_file():
        files, names = [path], [path.name]
    else:
        raise DataError(f"{path} does not exist; give an image, a folder of images or an npz")
    read = [_read_image(p, meta) for p in files]
    return Inputs(names=tuple(names), images=np.stack([im for im, _ in read]), split="",
                  shapes=tuple(hw for _, hw in read))  # fmt: skip


def _read_image(path: Path, meta: dict) -> tuple[np.ndarray, tuple[int, int]]:
    """The converted image and its (H, W) as read."""
    from PIL import Image

    mode = "L" if meta["n_channels"] == 1 else "RGB"
    image = decode_image(path, mode, int(meta["data_size"]), convert=True)  # checks the file
    with Image.open(path) as im:  # the header only
        width, height = im.size
    return image, (height, width)


def _read_npz(path: Path, meta: dict, split: str) -> Inputs:
    """``{split}_images`` (MedMNIST layout) or ``images`` of an npz file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            key = f"{split}_images" if f"{split}_images" in z.files else "images"
            if key not in z.files:
                raise DataError(f"{path}: no {split}_images (or images) array; give an npz in "
                                "MedMNIST layout")  # fmt: skip
            images = z[key]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a readable npz ({one_line(exc)}); replace the file") from None
    shape = tuple(int(s) for s in images.shape[1 : 1 + (3 if int(meta["ndim"]) == 3 else 2)])
    images = _convert_array(path, images, meta)
    n = len(images)
    return Inputs(names=tuple(map(str, range(n))), images=images,
                  split=split if key != "images" else "", shapes=(shape,) * n)  # fmt: skip


def _convert_array(path: Path, images: np.ndarray, meta: dict) -> np.ndarray:
    """uint8 arrays to the model's channels and data size (volumes: the size must match)."""
    size, channels, ndim = int(meta["data_size"]), int(meta["n_channels"]), int(meta["ndim"])
    if images.dtype != np.uint8:
        raise DataError(f"{path}: images are {images.dtype}; the model takes uint8 (0-255)")
    if ndim == 3:
        if images.ndim != 4 or images.shape[1:] != (size,) * 3:
            raise DataError(f"{path}: volumes of shape {images.shape[1:]}; the model takes "
                            f"(N, {size}, {size}, {size}) uint8 arrays")  # fmt: skip
        return images
    if images.ndim == 4 and images.shape[-1] not in (1, 3) or images.ndim not in (3, 4):
        raise DataError(f"{path}: arrays of shape {images.shape[1:]} are not images of 1 or 3 "
                        "channels (N, H, W[, C])")  # fmt: skip
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 3 and channels == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    elif images.ndim == 4 and channels == 1:  # ITU-R 601-2 luma, as PIL's convert("L")
        luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        images = np.clip(np.rint(luma), 0, 255).astype(np.uint8)
    if images.shape[1:3] != (size, size):
        images = _resize(images, size)
    return images


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(resize_image(Image.fromarray(im), size)) for im in images])
