"""The listing commands: ``bench datasets`` and ``bench models``."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import BenchError
from bench.terminal import Column, console, fit_table, print_rows

SAMPLE_COLS = ("train", "val", "test")

# The tables' columns; at a narrow terminal the highest ``drop`` goes first, names never.
DATASET_COLUMNS = (
    Column("name"), Column("dim", drop=6), Column("task", drop=3, wrap=True),
    Column("ch", drop=5), Column("classes", drop=4),
    *(Column(s, drop=d, right=True) for s, d in zip(SAMPLE_COLS, (7, 8, 9), strict=True)),
    Column("sizes", drop=2, wrap=True), Column("on disk", drop=1, wrap=True),
)  # fmt: skip
MODEL_COLUMNS = (
    Column("name"), Column("label", drop=4), Column("source", drop=3, wrap=True),
    Column("sizes", drop=1, wrap=True), Column("search space", drop=2),
)  # fmt: skip
AUGMENT_COLUMNS = (Column("name"), Column("source", drop=1, wrap=True))


def on_disk(spec, data_dir) -> list[int]:
    """Data sizes of ``spec`` on disk: in ``--data-dir`` / ``$BENCH_DATA_DIR``, else in the
    package (embedded) or the medmnist package's download folder (not MD5-checked here)."""
    from bench.data.info import medmnist_info
    from bench.data.medmnist import embedded_file, local_file, resolve_data_dir

    root = explicit = resolve_data_dir(data_dir)
    if root is None:
        default = medmnist_info().DEFAULT_ROOT
        root = Path(default) if default else None
    if spec.kind == "medmnist":
        found = [s for s in spec.sizes if root and local_file(spec, s, root) is not None]
        if explicit is None:  # without a data dir, the embedded copy is used too
            found += [s for s in spec.sizes if s not in found and embedded_file(spec, s)]
        return sorted(found)
    if spec.kind == "folder":
        from bench.data.folder import folder_on_disk

        return list(spec.sizes) if folder_on_disk(spec, root) else []
    return list(spec.sizes)


def cmd_datasets(args: argparse.Namespace) -> int:
    """``bench datasets``: every catalog dataset and the data sizes found on disk."""
    from bench.data.catalog import list_datasets

    rows = []
    for spec in list_datasets():
        row = spec.as_dict()
        row["on_disk"] = on_disk(spec, args.data_dir)
        rows.append(row)
    if args.format != "table":
        print_rows(rows, args.format)
        return 0
    cells = [
        (
            r["name"],
            f"{r['ndim']}D",
            r["task"],
            str(r["n_channels"]),
            str(r["n_classes"]),
            *(f"{r['n_samples'][s]:,}" if s in r["n_samples"] else "?" for s in SAMPLE_COLS),
            _sizes(r),
            " ".join(map(str, r["on_disk"])) or "-",
        )
        for r in rows
    ]
    out = console()
    out.print(fit_table("datasets (on disk: data sizes found)", DATASET_COLUMNS, cells,
                        width=out.width))  # fmt: skip
    return 0


def _sizes(row: dict) -> str:
    """``28 64 128 224``; a folder's ``8-1024 (native 64)``: it is resized on load."""
    native = " ".join(map(str, row["sizes"]))
    if row.get("size_range"):
        low, high = row["size_range"]
        return f"{low}-{high} (native {native})"
    return native


def cmd_models(args: argparse.Namespace) -> int:
    """Handler of ``bench models``: families and augmentations with source and search space."""
    from bench.models.registry import get_model_spec, list_models
    from bench.search.spaces import check_space_dir, default_space_dir

    space_dir = check_space_dir(getattr(args, "spaces", None))
    rows = []
    for name in list_models():
        spec = get_model_spec(name)
        rows.append(
            {
                "kind": "model",
                "name": name,
                "label": spec.label,
                "source": spec.source,
                "sizes": list(spec.sizes),
                "search_space": spec_space_path(spec, space_dir),
            }
        )
    from bench.augment.registry import get_augmentation, list_augmentations

    for name in list_augmentations():
        aspec = get_augmentation(name)
        rows.append(
            {
                "kind": "augmentation",
                "name": name,
                "label": name,
                "source": aspec.source,
                "sizes": [],
                "search_space": None,
            }
        )
    if args.format != "table":
        print_rows(rows, args.format)
        return 0
    models = [
        (r["name"], r["label"], r["source"], " ".join(map(str, r["sizes"])) or "-",
         short_path(r["search_space"], space_dir or default_space_dir()))
        for r in rows if r["kind"] == "model"
    ]  # fmt: skip
    augments = [(r["name"], r["source"]) for r in rows if r["kind"] == "augmentation"]
    out = console()
    title = "model families (and timm:NAME for any timm model)"
    out.print(fit_table(title, MODEL_COLUMNS, models, width=out.width))
    if augments:
        out.print(fit_table("augmentations", AUGMENT_COLUMNS, augments, width=out.width))
    return 0


def spec_space_path(spec, space_dir: Path | None = None) -> str | None:
    """The family's search-space file (resolved; package resources too; in ``space_dir``
    when given, else the package's), or None if it has none or it cannot be found."""
    from bench.search.spaces import space_file_path

    try:
        path = space_file_path(spec.name, space_dir)
    except BenchError:
        return None
    return str(path) if path is not None and path.is_file() else None


def short_path(path: str | None, space_dir: Path | None = None) -> str:
    """``path`` relative to ``space_dir`` (the search space folder in use: ``resnet18.yaml``)
    or else to the working directory when inside it; ``-`` for None."""
    if not path:
        return "-"
    p = Path(path)
    for base in (space_dir, Path.cwd()):
        if base is not None and p.is_relative_to(base):
            return str(p.relative_to(base))
    return str(p)
