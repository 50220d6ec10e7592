"""How fast a folder dataset is decoded the first time and read from its cache after.

Makes N random 64x64 grayscale JPEGs in 6 class folders (the Medical MNIST shape) in a
temporary folder, then times ``load_splits('folder:...')`` cold (PIL decode in a thread
pool + cache write) and warm (cache read).

    .venv/bin/python benchmarks/folder_decode.py --n 6000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_folder(root: Path, n: int, size: int = 64) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(size, size), dtype=np.uint8)
    for i in range(n):
        cls = root / f"class{i % 6}"
        cls.mkdir(parents=True, exist_ok=True)
        img = np.roll(base, i % size, axis=i % 2)
        Image.fromarray(img, "L").save(cls / f"{i:06d}.jpeg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6000, help="number of images")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCH_CACHE_DIR"] = str(Path(tmp) / "cache")
        from bench.data.load import load_splits

        root = Path(tmp) / "imgs"
        make_folder(root, args.n)
        t0 = time.perf_counter()
        splits = load_splits(f"folder:{root}")
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_splits(f"folder:{root}")
        warm = time.perf_counter() - t0
    n = sum(len(p) for p in (splits.train, splits.val, splits.test))
    print(f"{n} images, {os.cpu_count()} CPUs")
    print(f"cold (decode + cache write): {cold:.2f} s = {n / cold:,.0f} images/s")
    print(f"warm (cache read):           {warm:.2f} s = {n / warm:,.0f} images/s")
    print(f"58,954 images (Medical MNIST) cold, extrapolated: {58954 / (n / cold):.0f} s")


if __name__ == "__main__":
    main()
