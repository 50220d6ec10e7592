"""``bench train``: one fixed configuration over K seeds, no search; test metrics of each
seed's best-val checkpoint, predictions in the medmnist format, and one record."""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bench import records
from bench.errors import ConfigError

# The MedMNIST v2 baseline recipe (Yang et al. 2023): Adam 1e-3, batch 128, 100 epochs,
# lr x0.1 at epochs 50 and 75, inputs normalised with 0.5/0.5, no augmentation, the
# checkpoint with the best val AUC.
PROTOCOLS = {
    "medmnist-v2": dict(
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        batch_size=128,
        epochs=100,
        schedule="step",
        milestones=(0.5, 0.75),
        gamma=0.1,
        early_stop=None,
        metric="auc",
        mean=0.5,
        std=0.5,
        train_fraction=1.0,
    ),
}


def resolve_hp(params: dict, *, protocol: str | None, epochs: int | None):
    """(TrainHP, model params) from ``--param`` values, a protocol and ``--epochs``.

    Raises:
        ConfigError: a protocol run was given training hyperparameters it fixes.
    """
    from bench.train import TrainHP

    hp, rest = TrainHP.split_params(params)
    if protocol is not None:
        fixed = sorted(set(params) - set(rest))
        if fixed:
            raise ConfigError(
                f"--protocol {protocol} fixes the training recipe; drop --param "
                f"{', '.join(fixed)} (only --epochs may override it)"
            )
        hp = TrainHP(**PROTOCOLS[protocol])
    if epochs is not None:
        hp = TrainHP(**{**asdict(hp), "epochs": epochs})
    return hp, rest


def split_augment_params(params: dict, augment: str) -> tuple[dict, dict]:
    """``<policy>_<name>`` params go to the augmentation (prefix stripped); the rest stay."""
    prefix = f"{augment}_"
    aug = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
    return {k: v for k, v in params.items() if not k.startswith(prefix)}, aug


def augment_registry(name: str):
    """The augmentation registry module, after checking policy ``name`` exists there."""
    try:
        from bench.augment import registry
    except ImportError:
        raise ConfigError(
            f"--augment {name}: augmentations are not available in this build; use --augment none"
        ) from None
    registry.get_augmentation(name)  # unknown name: one line with close matches
    return registry


def build_augment(name: str, *, data, img_size: int, seed: int, device, hp: dict):
    """The augmentation callable for policy ``name`` (None for ``none``)."""
    if not name or name == "none":
        return None
    return augment_registry(name).build_augmentation(
        name, data=data, img_size=img_size, seed=seed, device=device, **hp
    )


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (std 0 for one seed)."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def file_flag(spec) -> str:
    """The dataset part of prediction file names: the flag, or the file/folder stem."""
    return Path(spec.path).stem if spec.kind in ("npz", "folder") and spec.path else spec.name


def cmd_train(args: argparse.Namespace) -> int:
    """Handler of ``bench train``."""
    from bench.config import parse_params
    from bench.data.load import load_splits
    from bench.models.registry import get_model_spec

    start = time.monotonic()
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: give at least 1")
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(f"--epochs {args.epochs}: give at least 1")
    if args.protocol and args.augment not in ("", "none"):
        raise ConfigError(f"--protocol {args.protocol} uses no augmentation; drop --augment")
    model_spec = get_model_spec(args.model)
    params = parse_params(args.param)
    hp, model_params = resolve_hp(params, protocol=args.protocol, epochs=args.epochs)
    augment = args.augment or "none"
    if augment != "none":
        augment_registry(augment)
    model_params, aug_params = split_augment_params(model_params, augment)
    splits = load_splits(args.dataset, args.size, args.data_dir)
    img_size = args.img_size or splits.data_size
    if model_spec.sizes and img_size not in model_spec.sizes:
        raise ConfigError(
            f"model {args.model} takes input sizes {', '.join(map(str, model_spec.sizes))}, "
            f"not {img_size}; pass --img-size with one of them"
        )
    if args.pretrained:
        model_params["pretrained"] = args.pretrained
    return TrainRun(
        args, splits, model_spec, hp, model_params, augment, aug_params, img_size, start=start
    ).run()


class TrainRun:
    """One ``bench train`` invocation: K seeded fits, test scoring, the run folder."""

    def __init__(
        self, args, splits, model_spec, hp, model_params, augment, aug_params, img_size, *, start
    ):
        from bench.device import resolve_device
        from bench.records import make_run_id

        self.args, self.splits, self.model_spec, self.hp = args, splits, model_spec, hp
        self.model_params, self.augment, self.aug_params = model_params, augment, aug_params
        self.img_size = img_size
        from bench.runner import cpu_threads  # the same CPU thread policy as `bench run`

        self.device = resolve_device(args.device)
        cpu_threads(self.device)
        self.seeds = [args.seed + i for i in range(args.seeds)]
        self.run_id = make_run_id(file_flag(splits.spec), splits.data_size, model_spec.name)
        self.dir = Path(args.out) / self.run_id
        self.start = start  # monotonic time the command began (wall_s includes data loading)

    def run(self) -> int:
        from bench.records import atomic_write_text

        atomic_write_text(self.dir / "config.json", json.dumps(self.config(), indent=2) + "\n")
        fits = []
        for seed in self.seeds:  # fits.json grows seed by seed, so a long run shows progress
            fits.append(self.fit_seed(seed))
            atomic_write_text(self.dir / "fits.json", json.dumps(fits, indent=1) + "\n")
        record = self.record(fits)
        from bench.records import RECORD_FILE, write_once_json

        write_once_json(self.dir / RECORD_FILE, record)
        self.summary(fits, record)
        return 0

    def config(self) -> dict:
        spec = self.splits.spec
        return {
            "command": "train",
            "dataset": spec.name,
            "data_size": self.splits.data_size,
            "img_size": self.img_size,
            "family": self.model_spec.name,
            "model_params": self.model_params,
            "train_hp": asdict(self.hp),
            "augment": self.augment,
            "augment_params": self.aug_params,
            "protocol": self.args.protocol,
            "seeds": self.seeds,
            "device": str(self.device),
            "torch_threads": torch_threads(),
        }

    def fit_seed(self, seed: int) -> dict:
        """Train one seed, score its best-val checkpoint on test, write its predictions."""
        from bench.metrics import classification_report
        from bench.models.registry import create_model
        from bench.records import prediction_file_name, write_predictions
        from bench.train import DivergedError, fit, predict, set_seed

        spec, tv = self.splits.spec, self.splits.train_val()
        set_seed(seed)
        model = create_model(
            self.args.model,
            num_classes=spec.n_outputs,
            in_chans=spec.n_channels,
            img_size=self.img_size,
            **self.model_params,
        )
        augment = build_augment(
            self.augment,
            data=tv,
            img_size=self.img_size,
            seed=seed,
            device=self.device,
            hp=self.aug_params,
        )
        t0 = time.monotonic()
        try:
            result = fit(
                model,
                tv,
                self.hp,
                device=self.device,
                seed=seed,
                img_size=self.img_size,
                augment=augment,
                on_epoch=self.progress(seed),
            )
        except DivergedError as exc:
            raise ConfigError(f"seed {seed} diverged ({exc}); lower --param lr") from None
        scores = predict(
            model,
            self.splits.test.images,
            spec=spec,
            device=self.device,
            img_size=self.img_size,
            mean=self.hp.mean,
            std=self.hp.std,
        )
        report = classification_report(self.splits.test.labels, scores, spec.task)
        name = prediction_file_name(
            file_flag(spec),
            self.splits.data_size,
            "test",
            report["auc"],
            report["acc"],
            f"seed{seed}",
        )
        write_predictions(self.dir / "predictions" / name, scores)
        return {
            "seed": seed,
            "test_auc": report["auc"],
            "test_acc": report["acc"],
            "val_score": result.best_val,
            "best_epoch": result.best_epoch,
            "stopped": result.stopped,
            "seconds": time.monotonic() - t0,
            "n_params": sum(p.numel() for p in model.parameters()),
            "history": result.history_dicts(),
            "test_report": report,
            "predictions": f"predictions/{name}",
            "augment_info": dict(getattr(augment, "info", None) or {}),
        }

    def progress(self, seed: int):
        """Per-epoch callback: a plain line every epoch unless ``--quiet`` (then every 10th)."""
        from rich.console import Console

        console, epochs, quiet = Console(stderr=True), self.hp.epochs, self.args.quiet

        def on_epoch(s) -> None:
            if not quiet or s.epoch % 10 == 0 or s.epoch == epochs:
                console.print(
                    f"seed {seed} epoch {s.epoch}/{epochs} loss {s.train_loss:.4f} "
                    f"val auc {s.val_auc:.4f} acc {s.val_acc:.4f} ({s.seconds:.1f}s)",
                    highlight=False,
                )

        return on_epoch

    def record(self, fits: list[dict]) -> dict:
        from bench.data.catalog import MEDMNIST_CITATION
        from bench.device import device_label, hardware
        from bench.records import provenance, utc_iso

        spec = self.splits.spec
        auc_mean, auc_std = mean_std([f["test_auc"] for f in fits])
        acc_mean, acc_std = mean_std([f["test_acc"] for f in fits])
        aug = {f"{self.augment}_{k}": v for k, v in self.aug_params.items()}
        params = {**self.model_params, **asdict(self.hp), **aug}
        cfg = json.dumps(
            self.config() | {"device": None, "torch_threads": None}, sort_keys=True, default=str
        )
        stopped = sorted({f["stopped"] for f in fits} - {"completed"})
        return {
            "run_id": self.run_id,
            "source": "bench",
            "kind": "train",
            "status": "ok",
            "method": f"{self.model_spec.label} ({self.img_size})",
            "family": self.args.model,
            "dataset": spec.name,
            "task": spec.task,
            "data_size": self.splits.data_size,
            "img_size": self.img_size,
            "test_auc_mean": auc_mean,
            "test_auc_std": auc_std,
            "test_acc_mean": acc_mean,
            "test_acc_std": acc_std,
            "n_seeds": len(fits),
            "seeds": ";".join(str(s) for s in self.seeds),
            "objective": self.hp.metric,
            "val_score": float(np.mean([f["val_score"] for f in fits])),
            "augment": self.augment,
            "params": params,
            "config_hash": hashlib.sha256(cfg.encode()).hexdigest()[:12],
            "n_params": fits[0]["n_params"],
            "budget_s": 0,
            "search_s": 0,
            "final_s": int(round(sum(f["seconds"] for f in fits))),
            "wall_s": int(round(time.monotonic() - self.start)),
            **records.NO_SEARCH,
            "device": device_label(self.device),
            **provenance(),
            "utc": utc_iso(),
            "citation": MEDMNIST_CITATION if self.args.protocol == "medmnist-v2" else "",
            "info": (f"protocol {self.args.protocol}; " if self.args.protocol else "")
            + (f"stopped: {', '.join(stopped)}" if stopped else ""),
            "per_seed": [
                {k: f[k] for k in ("seed", "test_auc", "test_acc", "val_score", "best_epoch")}
                for f in fits
            ],
            "hardware": hardware(),
            "epochs": self.hp.epochs,
            "augment_train_s": records.augment_train_seconds(fits),
        }

    def summary(self, fits: list[dict], record: dict) -> None:
        """Per-seed rows and mean ± std, then the run folder."""
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{record['method']} on {record['dataset']} ({record['data_size']})")
        for col in ("seed", "best epoch", "val " + self.hp.metric, "test AUC", "test ACC"):
            table.add_column(col, justify="right")
        for f in fits:
            table.add_row(
                str(f["seed"]),
                str(f["best_epoch"]),
                f"{f['val_score']:.3f}",
                f"{f['test_auc']:.3f}",
                f"{f['test_acc']:.3f}",
            )
        table.add_row(
            "mean ± std",
            "",
            "",
            f"{record['test_auc_mean']:.3f} ± {record['test_auc_std']:.3f}",
            f"{record['test_acc_mean']:.3f} ± {record['test_acc_std']:.3f}",
        )
        console = Console()
        console.print(table)
        console.print(f"run folder: {self.dir}  ({record['wall_s']} s)", highlight=False)
