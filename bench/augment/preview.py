"""``bench augment-preview``: a PNG grid of train images beside what a policy makes of them.

Most policies: a row of originals, then rows of augmented draws of the same images. ``dcgan``:
per class, a row of real train images and a row of generated samples for that class. Volumes:
the central axial, coronal and sagittal slice of each original and of one augmented draw.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bench.files import atomic_path

N_COLS = 8
N_DRAWS = 3


def _rows_policy(aug, x, y, seed: int) -> list[tuple[str, Any]]:
    import torch

    g = torch.Generator(device=x.device).manual_seed(seed)
    rows = [("original", x)]
    for i in range(N_DRAWS):
        rows.append((f"augmented {i + 1}", aug(x, y, g)[0]))
    return rows


PLANES = (("axial", 2), ("coronal", 3), ("sagittal", 4))  # plane and the axis it cuts


def _rows_volumes(aug, x, y, seed: int) -> list[tuple[str, Any]]:
    """Central slices of each plane: originals, then one augmented draw, plane by plane."""
    import torch

    g = torch.Generator(device=x.device).manual_seed(seed)
    augmented = aug(x, y, g)[0]
    rows = []
    for plane, axis in PLANES:
        middle = x.shape[axis] // 2
        rows.append((f"original {plane}", x.select(axis, middle)))
        rows.append((f"augmented {plane}", augmented.select(axis, middle)))
    return rows


def _rows_dcgan(aug, tv, x_all, seed: int) -> list[tuple[str, Any]]:
    import torch

    spec, device = tv.spec, x_all.device
    g = torch.Generator(device=device).manual_seed(seed)
    labels = tv.train.labels
    rows = []
    if spec.multilabel:
        pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:N_COLS]
        rows.append(("real (train)", x_all[pick.to(device)]))
        img, _ = aug.sample(N_COLS, g, device)
        rows.append(("generated (train label rows)", img))
        return rows
    for c, name in enumerate(spec.class_names):
        idx = torch.as_tensor((labels[:, 0] == c).nonzero()[0][:N_COLS], device=device)
        short = name if len(name) <= 24 else name[:22] + ".."
        if len(idx):
            rows.append((f"real: {short}", x_all[idx]))
        classes = torch.full((N_COLS,), c, dtype=torch.int64, device=device)
        img, _ = aug.sample(N_COLS, g, device, classes=classes)
        rows.append((f"generated: {short}", img))
    return rows


def render(rows: list[tuple[str, Any]], out: Path, title: str) -> None:
    """Draw labelled rows of uint8 (n, C, H, W) images into the PNG ``out`` (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from torchvision.utils import make_grid

    side = rows[0][1].shape[-1]
    padded = []
    for _, imgs in rows:
        imgs = imgs.cpu()
        if imgs.shape[0] < N_COLS:  # blank cells so every row has N_COLS columns
            blank = torch.zeros((N_COLS - imgs.shape[0], *imgs.shape[1:]), dtype=imgs.dtype)
            imgs = torch.cat([imgs, blank])
        padded.append(imgs[:N_COLS])
    grid = make_grid(torch.cat(padded), nrow=N_COLS, padding=2, pad_value=255)
    img = grid.permute(1, 2, 0).numpy()
    fig_w = 2.0 + N_COLS * max(0.9, side / 40)
    fig, ax = plt.subplots(figsize=(fig_w, 0.4 + len(rows) * fig_w / N_COLS * 0.9))
    ax.imshow(img[..., 0] if rows[0][1].shape[1] == 1 else img, cmap="gray", vmin=0, vmax=255)
    step = side + 2
    ax.set_yticks([2 + step * i + side / 2 for i in range(len(rows))])
    ax.set_yticklabels([label for label, _ in rows], fontsize=8)
    ax.set_xticks([])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)


def preview(
    dataset: str,
    augment: str,
    *,
    out: str | os.PathLike | None = None,
    size: int | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    device: str = "auto",
    cache_dir: str | None = None,
    hp: dict | None = None,
) -> Path:
    """Write the preview PNG of policy ``augment`` on ``dataset``'s train split; return its path.

    Args:
        dataset: catalog name, ``npz:PATH`` or ``folder:PATH``.
        augment: registered policy name.
        out: PNG path, or a folder to put ``augment_preview_<dataset>_<policy>.png`` in
            (that name in the working folder by default).
        size: data size (default 28 where available).
        data_dir: folder with the data files.
        seed: picks the images and seeds the draws (and the dcgan generator).
        device: ``auto``, ``cpu`` or ``cuda``.
        cache_dir: dcgan cache folder (default ``~/.cache/bench/dcgan``).
        hp: policy parameters (e.g. ``{"dcgan_steps": 800}``).
    """
    import numpy as np

    from bench.augment.registry import build_augmentation, get_augmentation
    from bench.data.load import load_splits
    from bench.data.splits import images_to_tensor, labels_to_tensor
    from bench.device import resolve_device

    get_augmentation(augment)  # unknown names fail before any data is loaded
    check_preview_out(out)
    splits = load_splits(dataset, size, data_dir)
    tv, spec = splits.train_val(), splits.spec
    dev = resolve_device(device)
    aug = build_augmentation(
        augment, data=tv, img_size=splits.data_size, seed=seed, device=dev,
        cache_dir=cache_dir, **(hp or {}),
    )  # fmt: skip
    if hasattr(aug, "sample"):  # a generative policy: real vs generated rows per class
        x_all = images_to_tensor(tv.train.images, n_channels=spec.n_channels, device=dev)
        rows = _rows_dcgan(aug, tv, x_all, seed)
    else:
        pick = np.random.default_rng(seed).choice(len(tv.train), N_COLS, replace=False)
        pick.sort()
        x = images_to_tensor(tv.train.images[pick], n_channels=spec.n_channels, ndim=spec.ndim,
                             device=dev)  # fmt: skip
        y = labels_to_tensor(tv.train.labels[pick], multilabel=spec.multilabel, device=dev)
        rows = (_rows_volumes if spec.ndim == 3 else _rows_policy)(aug, x, y, seed)
    stem = Path(spec.name.split(":", 1)[-1]).stem
    path = preview_path(out, f"augment_preview_{stem}_{augment}.png")
    side = f"{splits.data_size}^3 voxels" if spec.ndim == 3 else f"{splits.data_size} px"
    title = f"{stem} ({side}, train split): {augment}"
    if "dcgan_steps_done" in getattr(aug, "info", {}):
        title += f", {aug.info['dcgan_steps_done']} GAN steps, cache {aug.info['cache']}"
    render(rows, path, title)
    return path


def _is_folder(out: str | os.PathLike) -> bool:
    """``--out`` names a folder: an existing one, or given with a trailing slash."""
    return Path(out).is_dir() or str(out).endswith(("/", "\\"))


def check_preview_out(out: str | os.PathLike | None) -> None:
    """One line before any work when the PNG cannot be written where ``out`` says."""
    from bench.runtime import check_output_dir, check_output_file

    if not out:
        check_output_dir(Path.cwd(), "the working folder")
    elif _is_folder(out):
        check_output_dir(Path(out), "--out")
    else:
        check_output_file(Path(out), "--out")


def preview_path(out: str | Path | None, default_name: str) -> Path:
    """The PNG to write: ``out`` itself, or ``default_name`` inside it when ``out`` is a
    folder (existing, or given with a trailing slash); ``default_name`` here without it."""
    if not out:
        return Path(default_name)
    path = Path(out)
    return path / default_name if _is_folder(out) else path


def cmd_preview(args: argparse.Namespace) -> int:
    """Handler of ``bench augment-preview``: writes the PNG and prints its path."""
    path = preview(
        args.dataset,
        args.augment,
        out=args.out,
        size=args.size,
        data_dir=args.data_dir,
        seed=args.seed,
        device=args.device,
    )
    print(path)
    return 0
