"""The listing commands: ``bench datasets`` and ``bench models``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.errors import BenchError

SAMPLE_COLS = ("train", "val", "test")


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
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = Table(title="datasets (on disk: data sizes found)")
    for col in ("name", "dim", "task", "ch", "classes", "train", "val", "test", "sizes"):
        table.add_column(col, no_wrap=True, justify="right" if col in SAMPLE_COLS else "left")
    table.add_column("on disk", no_wrap=True)
    for r in rows:
        ns = r["n_samples"]
        table.add_row(
            r["name"],
            f"{r['ndim']}D",
            r["task"],
            str(r["n_channels"]),
            str(r["n_classes"]),
            *(f"{ns[s]:,}" if s in ns else "?" for s in SAMPLE_COLS),
            _sizes(r),
            ",".join(map(str, r["on_disk"])) or "-",
        )
    console = Console()
    if not console.is_terminal:  # piped: don't squeeze the table into 80 columns
        console = Console(width=160)
    console.print(table)
    return 0


def _sizes(row: dict) -> str:
    """``28,64,128,224``; a folder's ``8-1024 (native 64)``: it is resized on load."""
    native = ",".join(map(str, row["sizes"]))
    if row.get("size_range"):
        low, high = row["size_range"]
        return f"{low}-{high} (native {native})"
    return native


def cmd_models(args: argparse.Namespace) -> int:
    """Handler of ``bench models``: families and augmentations with source and search space."""
    from bench.models.registry import get_model_spec, list_models

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
                "search_space": spec_space_path(spec),
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
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    models_table = Table(title="model families (and timm:NAME for any timm model)")
    for col in ("name", "label", "source", "sizes", "search space"):
        models_table.add_column(col, no_wrap=True)
    augment_table = Table(title="augmentations")
    for col in ("name", "source"):
        augment_table.add_column(col, no_wrap=True)
    for r in rows:
        if r["kind"] == "model":
            sizes = ",".join(map(str, r["sizes"])) or "-"
            space = short_path(r["search_space"])
            models_table.add_row(r["name"], r["label"], r["source"], sizes, space)
        else:
            augment_table.add_row(r["name"], r["source"])
    console = Console()
    if not console.is_terminal:  # piped: don't squeeze the table into 80 columns
        console = Console(width=160)
    console.print(models_table)
    if augment_table.row_count:
        console.print(augment_table)
    return 0


def spec_space_path(spec) -> str | None:
    """The family's search-space file (resolved; package resources too), or None if it has
    none or it cannot be found."""
    from bench.search.spaces import space_file_path

    try:
        path = space_file_path(spec.name)
    except BenchError:
        return None
    return str(path) if path is not None and path.is_file() else None


def short_path(path: str | None) -> str:
    """``path`` relative to the working directory when inside it, ``-`` for None."""
    if not path:
        return "-"
    p = Path(path)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)
