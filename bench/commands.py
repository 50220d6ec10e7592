"""The listing and scoring commands: ``bench datasets``, ``bench models``, ``bench evaluate``."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table


def on_disk(spec, data_dir) -> list[int]:
    """Data sizes of ``spec`` whose file is in ``data_dir`` (not MD5-checked here)."""
    from bench.data.medmnist import local_file, resolve_data_dir

    root = resolve_data_dir(data_dir)
    if root is None:
        from medmnist.info import DEFAULT_ROOT

        root = __import__("pathlib").Path(DEFAULT_ROOT)
    if spec.kind == "medmnist":
        return [s for s in spec.sizes if local_file(spec, s, root) is not None]
    if spec.kind == "folder":
        from bench.data.folder import folder_on_disk

        return list(spec.sizes) if folder_on_disk(spec, root) else []
    return list(spec.sizes)


def datasets(args: argparse.Namespace) -> int:
    from bench.data.catalog import list_datasets

    rows = []
    for spec in list_datasets():
        row = spec.as_dict()
        row["on_disk"] = on_disk(spec, args.data_dir)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = Table(title="datasets")
    for col in ("name", "task", "ch", "classes", "train/val/test", "sizes", "on disk"):
        table.add_column(col)
    for r in rows:
        ns = r["n_samples"]
        table.add_row(
            r["name"] + (" (3D)" if r["ndim"] == 3 else ""),
            r["task"],
            str(r["n_channels"]),
            str(r["n_classes"]),
            f"{ns.get('train', '?')}/{ns.get('val', '?')}/{ns.get('test', '?')}",
            ",".join(map(str, r["sizes"])),
            ",".join(map(str, r["on_disk"])) or "-",
        )
    Console().print(table)
    return 0


def models(args: argparse.Namespace) -> int:
    from bench.models.registry import get_model_spec, list_models

    rows = []
    for name in list_models():
        spec = get_model_spec(name)
        rows.append({"kind": "model", "name": name, "label": spec.label, "source": spec.source,
                     "sizes": list(spec.sizes), "search_space": spec_space_path(spec)})
    try:
        from bench.augment.registry import get_augmentation, list_augmentations
    except ImportError:
        list_augmentations = None
    if list_augmentations is not None:
        for name in list_augmentations():
            aspec = get_augmentation(name)
            rows.append({"kind": "augmentation", "name": name, "label": name,
                         "source": aspec.source, "sizes": [], "search_space": ""})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = Table(title="model families and augmentations")
    for col in ("kind", "name", "label", "source", "search space"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["kind"], r["name"], r["label"], r["source"], r["search_space"] or "-")
    Console().print(table)
    return 0


def spec_space_path(spec) -> str:
    """Where the family's search space lives (for display)."""
    return spec.search_space or f"search_spaces/{spec.name}.yaml"


def evaluate(args: argparse.Namespace) -> int:
    from bench.data.load import load_splits
    from bench.errors import BenchError
    from bench.metrics import classification_report
    from bench.records import read_predictions

    splits = load_splits(args.dataset, args.size, args.data_dir)
    labels = getattr(splits, args.split).labels
    scores = read_predictions(args.predictions)
    if scores.shape[0] != labels.shape[0]:
        raise BenchError(
            f"{args.predictions}: {scores.shape[0]} rows but the {args.split} split of "
            f"{splits.spec.name} has {labels.shape[0]} samples"
        )
    report = classification_report(labels, scores, splits.spec.task)
    print(json.dumps({"dataset": splits.spec.name, "split": args.split,
                      "auc": report["auc"], "acc": report["acc"],
                      "f1_macro": report["f1_macro"]}, indent=1))
    return 0
