"""``bench train``: one fixed configuration over K seeds, no search; test metrics of each
seed's best-val checkpoint, predictions in the medmnist format, and one record."""

from __future__ import annotations

import argparse
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import ConfigError

if TYPE_CHECKING:
    from bench.train import FitConfig

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
        ConfigError: a protocol run was given training hyperparameters or ``--epochs``, which
            it fixes.
    """
    from bench.train import TrainHP

    hp, rest = TrainHP.split_params(params)
    if protocol is not None:
        fixed = [f"--param {k}" for k in sorted(set(params) - set(rest))]
        fixed += ["--epochs"] if epochs is not None else []
        if fixed:
            raise ConfigError(
                f"--protocol {protocol} fixes the training recipe; drop {', '.join(fixed)} "
                "(or drop --protocol and give the values you want)"
            )
        hp = TrainHP(**PROTOCOLS[protocol])
    if epochs is not None:
        hp = TrainHP(**{**asdict(hp), "epochs": epochs})
    return hp, rest


def split_augment_params(params: dict, augment: str) -> tuple[dict, dict]:
    """``<policy>_<name>`` params go to the augmentation (named as in the search space and
    the records, :func:`bench.search.spaces.policy_params`); the rest stay."""
    from bench.search.spaces import policy_params

    aug = policy_params(params, augment)
    return {k: v for k, v in params.items() if k not in aug}, aug


def cmd_train(args: argparse.Namespace) -> int:
    """Handler of ``bench train``: one record per policy of ``--augment`` (a comma list is
    an ablation over augmentation policies for one fixed model)."""
    from bench.config import parse_params
    from bench.files import write_guard
    from bench.models.registry import check_params, get_model_spec
    from bench.train import FitConfig

    start = time.monotonic()
    policies = _check_train_args(seeds=args.seeds, epochs=args.epochs, augment=args.augment,
                                 cv=args.cv)  # fmt: skip
    model_spec = get_model_spec(args.model)
    hp, model_params = resolve_hp(parse_params(args.param), protocol=args.protocol,
                                  epochs=args.epochs)  # fmt: skip
    if args.pretrained:
        model_params["pretrained"] = args.pretrained
    configs = []
    for policy in policies:
        own, aug_params = split_augment_params(model_params, policy)
        for other in (p for p in policies if p != policy):
            own, _ = split_augment_params(own, other)
        check_params(args.model, own)  # a wrong name or type: one line, nothing loaded
        configs.append(FitConfig(args.model, own, hp, policy, aug_params))
    splits, img_size = _load_checked(args.model, model_spec, policies,
                                     out=Path(args.out),
                                     dataset=args.dataset, size=args.size,
                                     data_dir=args.data_dir, cv=args.cv,
                                     img_size=args.img_size)  # fmt: skip
    try_build(configs[0], splits.spec, img_size)
    for config in configs:
        run = TrainRun(splits, config, img_size, device=args.device, seed=args.seed,
                       seeds=args.seeds, cv=args.cv, out=Path(args.out), protocol=args.protocol,
                       quiet=args.quiet, start=start)  # fmt: skip
        with removed_if_refused(run.dir), write_guard(Path(args.out)):
            run.run()
        start = time.monotonic()  # the next record's wall time starts here
    return 0


def try_build(config: FitConfig, spec, img_size: int) -> None:
    """Build the model once on the CPU before any folder is made, so that what only its
    builder finds (a third-party constructor's missing arguments, pretrained weights that
    cannot be had) is one line and leaves nothing behind."""
    from bench.models.registry import model_for

    model_for(spec, config.family, img_size=img_size, **config.model_params)


@contextmanager
def removed_if_refused(run_dir: Path):
    """Remove ``run_dir`` (and the empty folders above it that it created) if the block is
    refused with a BenchError: a ``bench train`` does not resume, so a refused one leaves
    nothing behind."""
    from bench.errors import BenchError
    from bench.runtime import nearest_existing

    run_dir = Path(run_dir)
    existing = nearest_existing(run_dir.absolute())
    try:
        yield
    except BenchError:
        shutil.rmtree(run_dir, ignore_errors=True)
        parent = run_dir.absolute().parent
        while parent != existing and parent.is_relative_to(existing):
            try:
                parent.rmdir()  # only when empty: another command may have written there
            except OSError:
                break
            parent = parent.parent
        raise


def _load_checked(model: str, model_spec, policies: list[str], *, out: Path, dataset: str,
                  size: int | None, data_dir: str | None, cv: int | None,
                  img_size: int | None):  # fmt: skip
    """Check the output folder, load the data, check the folds, the dimensions of the model
    (its ``ModelSpec``) and the policies, and the input size: ``(Splits, img_size)``.

    Raises:
        ConfigError: one line naming the flag and the fix.
    """
    from bench.augment.registry import check_augment_ndim
    from bench.config import at_least
    from bench.data.folds import check_cv, pool_labels
    from bench.data.load import load_splits
    from bench.models.registry import check_ndim
    from bench.runtime import check_output_dir

    check_output_dir(out)
    splits = load_splits(dataset, size, data_dir)
    if cv is not None:
        check_cv(cv, pool_labels(splits.train_val()), multilabel=splits.spec.multilabel)
    check_ndim(model, splits.spec.ndim, splits.spec.name)
    for policy in policies:
        if policy != "none":
            check_augment_ndim(policy, splits.spec.ndim, splits.spec.name)
    img_size = splits.data_size if img_size is None else at_least("--img-size", img_size)
    if model_spec.sizes and img_size not in model_spec.sizes:
        raise ConfigError(
            f"model {model} takes input sizes {', '.join(map(str, model_spec.sizes))}, "
            f"not {img_size}; pass --img-size with one of them"
        )
    return splits, img_size


def _check_train_args(*, seeds: int, epochs: int | None, augment: str,
                      cv: int | None) -> list[str]:  # fmt: skip
    """Validate the flags that need no data; returns the augmentation policies.

    Raises:
        ConfigError: one line naming the flag and the fix.
    """
    from bench.augment.registry import get_augmentation
    from bench.config import parse_list
    from bench.data.folds import check_cv

    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: give at least 1")
    if epochs is not None and epochs < 1:
        raise ConfigError(f"--epochs {epochs}: give at least 1")
    policies = parse_list(augment) or ["none"]  # a protocol fixes training, not this
    for policy in policies:
        if policy != "none":
            get_augmentation(policy)  # unknown name: one line with close matches
    if cv is not None and seeds != 1:
        raise ConfigError(f"--cv {cv} fits one model per fold (seed, seed+1, ...); "
                          "drop --seeds")  # fmt: skip
    if cv is not None:
        check_cv(cv)
    return policies


class TrainRun:
    """One ``bench train`` invocation: K seeded fits, test scoring, the run folder.

    Args:
        splits: the loaded data.
        config: the configuration every fit trains.
        img_size: the model input size.
        device: ``--device`` (auto, cpu or cuda).
        seed: the first seed (seed, seed+1, ...).
        seeds: fits without ``cv``.
        cv: ``--cv K``: one fit per fold (None: seeded fits on the official split).
        out: the folder the run folder goes in.
        protocol: ``--protocol`` (recorded).
        quiet: progress every 10th epoch only.
        start: monotonic time the command began (wall_s includes data loading).
    """

    def __init__(self, splits, config: FitConfig, img_size: int, *, device: str, seed: int,
                 seeds: int, cv: int | None, out: Path, protocol: str | None, quiet: bool,
                 start: float) -> None:  # fmt: skip
        from bench.device import resolve_device
        from bench.results.records import make_run_id
        from bench.runtime import cpu_threads, file_flag

        self.splits, self.fit_config, self.img_size = splits, config, img_size
        self.seed, self.cv, self.protocol, self.quiet = seed, cv, protocol, quiet
        self.device = resolve_device(device)
        cpu_threads(self.device)  # the same CPU thread policy as `bench run`
        self.seeds = [seed + i for i in range(cv or seeds)]
        run_id = make_run_id(file_flag(splits.spec), splits.data_size, kind="train",
                             constraint="")  # fmt: skip
        self.dir = Path(out) / run_id
        self.start = start

    def run(self) -> int:
        from bench.files import write_json, write_once_json
        from bench.results.records import RECORD_FILE
        from bench.run.fit import EnsembleMember, fit_and_score, score_ensembles, write_fits

        write_json(self.dir / "config.json", self.config())
        results = []
        for seed, splits in self.fits():  # fits.json grows fit by fit: a long run shows progress
            results.append(fit_and_score(
                self.fit_config, splits, seed=seed, img_size=self.img_size,
                device=self.device, run_dir=self.dir, on_epoch=self.progress(seed),
            ))  # fmt: skip
            write_fits(self.dir, results)
        member = EnsembleMember(None, self.fit_config.family, 1.0, results)
        record = self.record(results, score_ensembles(self.splits, [member], run_dir=self.dir))
        write_once_json(self.dir / RECORD_FILE, record.as_dict())
        self.summary(results, record)
        return 0

    def fits(self):
        """``(seed, Splits)`` of each fit: one per seed, or with ``--cv K`` one per fold (fold
        ``i`` held out as val, seed ``seed + i``; the folds saved in the run folder)."""
        from bench.data.folds import fold_ids, fold_splits, pool_labels, save_folds

        k = self.cv
        if not k:
            return [(seed, self.splits) for seed in self.seeds]
        labels = pool_labels(self.splits.train_val())
        save_folds(self.dir, fold_ids(labels, k, self.seed), self.seed)
        return fold_splits(self.splits, k, self.seed)

    def config(self) -> dict:
        """The command's configuration (config.json; hashed without device and threads)."""
        import torch

        cfg = self.fit_config
        return {
            "command": "train",
            "dataset": self.splits.spec.name,
            "data_size": self.splits.data_size,
            "img_size": self.img_size,
            "family": cfg.family,
            "model_params": cfg.model_params,
            "train_hp": asdict(cfg.hp),
            "augment": cfg.aug_name,
            "augment_params": cfg.aug_hp,
            "protocol": self.protocol,
            "seeds": self.seeds,
            "cv": self.cv,
            "device": str(self.device),
            "torch_threads": torch.get_num_threads(),
        }

    def progress(self, seed: int):
        """Per-epoch callback: a plain line every epoch unless ``--quiet`` (then every 10th)."""
        from rich.console import Console

        console, epochs, quiet = Console(stderr=True), self.fit_config.hp.epochs, self.quiet

        def on_epoch(s) -> None:
            if not quiet or s.epoch % 10 == 0 or s.epoch == epochs:
                console.print(
                    f"seed {seed} epoch {s.epoch}/{epochs} loss {s.train_loss:.4f} "
                    f"val auc {s.val_auc:.4f} acc {s.val_acc:.4f} ({s.seconds:.1f}s)",
                    highlight=False,
                )

        return on_epoch

    def record(self, results, ensembles: dict):
        from bench.data.info import MEDMNIST_CITATION
        from bench.device import device_label
        from bench.models.registry import method_label
        from bench.results.records import build_record
        from bench.run.fit import augment_train_seconds

        cfg, protocol = self.fit_config, self.protocol
        stopped = sorted({r.stopped for r in results} - {"completed"})
        return build_record(
            run_id=self.dir.name, kind="train", spec=self.splits.spec,
            data_size=self.splits.data_size, method=method_label(cfg.family, self.img_size),
            family=cfg.family, per_seed=[r.per_seed() for r in results],
            config=self.config() | {"device": None, "torch_threads": None}, params=cfg.params(),
            info=[f"protocol {protocol}" if protocol else "",
                  f"stopped: {', '.join(stopped)}" if stopped else ""],
            img_size=self.img_size, objective=cfg.hp.metric,
            val_score=sum(r.val_score for r in results) / len(results), augment=cfg.aug_name,
            n_params=results[0].n_params, final_s=sum(r.seconds for r in results),
            wall_s=time.monotonic() - self.start, device=device_label(self.device),
            citation=MEDMNIST_CITATION if protocol == "medmnist-v2" else "",
            epochs=cfg.hp.epochs, augment_train_s=augment_train_seconds(results),
            cv=self.cv or 0, **ensembles,
        )  # fmt: skip

    def summary(self, results, record) -> None:
        """Per-seed rows and mean ± std, then the run folder."""
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{record.method} on {record.dataset} ({record.data_size})")
        for col in ("seed", "best epoch", "val " + self.fit_config.hp.metric, "test AUC",
                    "test ACC"):  # fmt: skip
            table.add_column(col, justify="right")
        for r in results:
            table.add_row(str(r.seed), str(r.best_epoch), f"{r.val_score:.3f}",
                          f"{r.test['auc']:.3f}", f"{r.test['acc']:.3f}")  # fmt: skip
        table.add_row(
            "mean ± std", "", "",
            f"{record.test_auc_mean:.3f} ± {record.test_auc_std:.3f}",
            f"{record.test_acc_mean:.3f} ± {record.test_acc_std:.3f}",
        )  # fmt: skip
        console = Console()
        console.print(table)
        if self.cv:
            from bench.results.records import mean_std

            mean, std = mean_std([r.val_score for r in results])
            console.print(f"{self.cv}-fold CV {self.fit_config.hp.metric} on the held-out "
                          f"folds: {mean:.3f} ± {std:.3f}; the fold models averaged: test AUC "
                          f"{record.seed_ensemble_test_auc:.3f} ACC "
                          f"{record.seed_ensemble_test_acc:.3f}", highlight=False)  # fmt: skip
        console.print(f"run folder: {self.dir}  ({record.wall_s} s)", highlight=False)
