"""Training throughput (images/s, volumes/s) at 28 px / 28^3 voxels: the model's own compute
against our data path and against the reference pipeline of the MedMNIST experiments.

For each line (a model, optionally with an augmentation policy) it times, interleaved and
repeated, so that machine noise hits every figure alike:

- ``raw``: the training step alone (forward, loss, backward, optimiser step) on one float
  batch already in memory: the compute limit of the machine;
- ``ours``: ``bench.train.train_epoch``, the fit loop's real epoch code, on the split held as
  one uint8 tensor (seeded permutation, batch indexing, optional augmentation, batched
  normalisation);
- ``reference``: the MedMNIST experiments' pipeline: ``medmnist``'s Dataset returning one PIL
  image at a time through ``ToTensor`` + ``Normalize`` (plus the policy's torchvision
  transform, if any), a DataLoader with batch 128, shuffled, ``num_workers`` 0 and 2; the
  faster of the two is reported.

Each figure is the median of ``--repeats`` (>= 3) timed passes. One line per model:

    MODEL raw=N ours=N reference=N ours/raw=R ours/reference=R

The 3D lines (``3d:FAMILY``, batch 16 volumes) have ``raw`` and ``ours`` only:

    3d:MODEL raw=N ours=N ours/raw=R

Data: PneumoniaMNIST or BreastMNIST (AdrenalMNIST3D for the 3D lines) from ``--data-dir``
(default ../shared/data) if present, else synthetic. Add a line by appending a ``Line`` to
``LINES``.

    python benchmarks/throughput.py [--lines small_cnn,resnet18] [--steps N] [--repeats 3]
        [--batch N] [--no-reference]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from bench.data.splits import TrainVal, images_to_tensor, labels_to_tensor
from bench.device import policy_for, prepare_model, resolve_device
from bench.models.registry import create_model
from bench.train import (
    TrainHP,
    TrainState,
    make_loss,
    make_optimizer,
    to_input,
    train_epoch,
    train_step,
)

BATCH = 128
SIZE = 28
DATASETS = ("pneumoniamnist", "breastmnist")  # first one on disk is used
DATASETS_3D = ("adrenalmnist3d",)


@dataclass(frozen=True)
class Line:
    """One output line: a model, our augmentation policy, and the reference's equivalent.

    Attributes:
        label: first word of the line, e.g. ``small_cnn`` or ``small_cnn+simple``.
        model: registry name of the family.
        augment: our policy (``bench.augment.registry``), ``none`` for none.
        reference_transforms: builds the torchvision PIL transforms the reference applies
            before ``ToTensor`` (e.g. ``[AutoAugment(CIFAR10)]``).
        model_params: builder kwargs.
        steps: batches per timed pass (``--steps`` overrides).
        ndim: 2 (images) or 3 (volumes: no reference pipeline).
        batch: samples per batch.
    """

    label: str
    model: str
    augment: str = "none"
    reference_transforms: Callable[[], list] = list
    model_params: dict = field(default_factory=dict)
    steps: int = 16
    ndim: int = 2
    batch: int = BATCH


def simple_reference() -> list:
    """torchvision PIL transforms matching ``simple`` at its default strength 0.5."""
    from torchvision import transforms

    return [
        transforms.RandomHorizontalFlip(),
        transforms.RandomAffine(degrees=15, translate=(0.075, 0.075), scale=(0.875, 1.125)),
    ]


def autoaugment_cifar10_reference() -> list:
    """torchvision's AutoAugment (CIFAR-10 policy) on each PIL image, as the course reports."""
    from torchvision import transforms

    return [transforms.AutoAugment(transforms.AutoAugmentPolicy.CIFAR10)]


LINES = [
    Line("small_cnn", "small_cnn"),
    Line("hybrid", "hybrid", steps=8),
    Line("resnet18", "resnet18", steps=4),
    Line("resnet50", "resnet50", steps=2),
    Line("small_cnn+simple", "small_cnn", "simple", simple_reference),
    Line(
        "small_cnn+autoaugment_cifar10",
        "small_cnn",
        "autoaugment_cifar10",
        autoaugment_cifar10_reference,
    ),
    Line("3d:small_cnn3d", "small_cnn3d", ndim=3, batch=16, steps=8),
    Line("3d:small_cnn3d+simple", "small_cnn3d", "simple", ndim=3, batch=16, steps=8),
    *(
        Line(f"3d:resnet{d}_{m}", f"resnet{d}_{m}", ndim=3, batch=16, steps=1)
        for d in (18, 50)
        for m in ("2_5d", "3d", "acs")
    ),
]


def load_data(data_dir: Path, ndim: int = 2):
    """(TrainVal, dataset flag or None for synthetic) of the first dataset on disk."""
    from bench.data.load import load_splits

    for flag in DATASETS if ndim == 2 else DATASETS_3D:
        if (data_dir / f"{flag}.npz").is_file():
            return load_splits(flag, SIZE, data_dir).train_val(), flag
    from bench.data.catalog import get_dataset
    from bench.data.splits import Split

    rng = np.random.default_rng(0)
    n = 4096 if ndim == 2 else 256
    labels = rng.integers(0, 2, size=(n, 1))
    shape = (n, *(SIZE,) * ndim)
    bright = 64 * labels.reshape((n,) + (1,) * ndim)
    images = (rng.integers(0, 128, size=shape) + bright).astype(np.uint8)
    split = Split(images, labels)
    flag = "pneumoniamnist" if ndim == 2 else "adrenalmnist3d"
    return TrainVal(get_dataset(flag), SIZE, split, split), None


class ReferenceDataset(torch.utils.data.Dataset):
    """What ``medmnist.dataset.MedMNIST2D.__getitem__`` does, for synthetic data."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i].astype(int)


class Bench:
    """The three timed cases of one line, sharing one model and optimiser."""

    def __init__(
        self, line: Line, data: TrainVal, flag: str | None, data_dir: Path, *, steps: int, device,
        reference: bool = True,
    ) -> None:  # fmt: skip
        torch.manual_seed(0)
        spec = data.spec
        self.line, self.device, self.steps = line, device, steps
        self.batch = line.batch
        n = steps * self.batch
        if len(data.train) < n:
            raise SystemExit(f"need {n} training samples for --steps {steps}; lower --steps")
        images, labels = data.train.images[:n], data.train.labels[:n]
        model = create_model(
            line.model,
            num_classes=spec.n_outputs,
            in_chans=spec.n_channels,
            img_size=SIZE,
            **line.model_params,
        )
        self.model = prepare_model(model, device)
        self.hp = TrainHP(batch_size=self.batch, lr=1e-4)  # a small lr keeps weights sane
        self.optimizer = make_optimizer(self.model, self.hp)
        self.loss_fn = make_loss(spec.task)
        self.state = TrainState(
            model=self.model,
            optimizer=self.optimizer,
            loss_fn=self.loss_fn,
            x=images_to_tensor(images, n_channels=spec.n_channels, ndim=spec.ndim, device=device),
            y=labels_to_tensor(labels, multilabel=spec.multilabel, device=device),
            hp=self.hp,
            device=device,
            augment=self.build_augment(data),
            perm_gen=torch.Generator().manual_seed(0),
            aug_gen=torch.Generator(device=device).manual_seed(1),
        )
        self.raw_x = to_input(self.state.x[: self.batch], mean=0.5, std=0.5, device=device)
        self.raw_y = self.state.y[: self.batch]
        self.reference_data = None
        if line.ndim == 2 and reference:  # the MedMNIST 2D Dataset/DataLoader pipeline
            self.reference_data = self.build_reference(images, labels, flag, data_dir, n)

    def build_augment(self, data: TrainVal):
        if self.line.augment == "none":
            return None
        from bench.augment.registry import build_augmentation

        return build_augmentation(
            self.line.augment, data=data, img_size=SIZE, seed=0, device=self.device
        )

    def build_reference(self, images, labels, flag, data_dir, n):
        from torchvision import transforms

        transform = transforms.Compose(
            [
                *self.line.reference_transforms(),
                transforms.ToTensor(),
                transforms.Normalize(mean=[0.5], std=[0.5]),
            ]
        )
        if flag is None:
            return ReferenceDataset(images, labels, transform)
        import medmnist

        cls = getattr(medmnist, medmnist.INFO[flag]["python_class"])
        dataset = cls(split="train", transform=transform, root=str(data_dir))
        return torch.utils.data.Subset(dataset, range(n))

    def sync(self) -> None:
        policy_for(self.device).synchronize(self.device)

    def raw(self) -> int:
        for _ in range(self.steps):
            train_step(
                self.model, self.optimizer, self.loss_fn, self.raw_x, self.raw_y, self.device
            )
        return self.steps * self.batch

    def ours(self) -> int:
        _, seen, _ = train_epoch(self.state)
        return seen

    def reference(self, workers: int) -> int:
        loader = torch.utils.data.DataLoader(
            self.reference_data, batch_size=BATCH, shuffle=True, num_workers=workers
        )
        seen = 0
        self.model.train()
        for x, y in loader:
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device).squeeze(1).long()
            train_step(self.model, self.optimizer, self.loss_fn, x, y, self.device)
            seen += len(x)
        return seen

    def cases(self) -> dict[str, Callable[[], int]]:
        cases = {"raw": self.raw, "ours": self.ours}
        if self.reference_data is not None:
            cases["reference0"] = lambda: self.reference(0)
            cases["reference2"] = lambda: self.reference(2)
        return cases

    def timed(self, fn: Callable[[], int]) -> float:
        """Images per second of one call of ``fn``."""
        self.sync()
        t0 = time.perf_counter()
        n = fn()
        self.sync()
        return n / (time.perf_counter() - t0)


def measure(bench: Bench, repeats: int) -> dict[str, float]:
    """Median images/s of each case over ``repeats`` interleaved rounds (after a warm-up)."""
    cases = bench.cases()
    for fn in cases.values():  # warm-up: allocator, oneDNN kernels, worker start-up paths
        fn()
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(repeats):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in order:
            rates[name].append(bench.timed(cases[name]))
    print(
        f"# {bench.line.label} ({bench.steps} batches per pass): "
        + "  ".join(f"{k}=[{', '.join(f'{v:.0f}' for v in vs)}]" for k, vs in rates.items()),
        file=sys.stderr,
    )
    return {name: statistics.median(vs) for name, vs in rates.items()}


def format_line(label: str, m: dict[str, float]) -> str:
    """``MODEL raw=N ours=N reference=N ours/raw=R ours/reference=R`` (no reference: 3D)."""
    if "reference0" not in m:
        return (
            f"{label} raw={m['raw']:.1f} ours={m['ours']:.1f} ours/raw={m['ours'] / m['raw']:.2f}"
        )
    ref = max(m["reference0"], m["reference2"])
    return (
        f"{label} raw={m['raw']:.0f} ours={m['ours']:.0f} reference={ref:.0f} "
        f"ours/raw={m['ours'] / m['raw']:.2f} ours/reference={m['ours'] / ref:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lines",
        default=",".join(line.label for line in LINES),
        help="comma-separated line labels",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="batches per timed pass (default: per line)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=None,
                        help="samples per batch of every line (default: per line)")  # fmt: skip
    parser.add_argument("--no-reference", action="store_true",
                        help="time raw and ours only (no MedMNIST DataLoader)")  # fmt: skip
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    if args.threads:
        torch.set_num_threads(args.threads)
    by_label = {line.label: line for line in LINES}
    wanted = [s.strip() for s in args.lines.split(",") if s.strip()]
    unknown = [w for w in wanted if w not in by_label]
    if unknown:
        parser.error(f"unknown line(s) {', '.join(unknown)}; known: {', '.join(by_label)}")
    device = resolve_device(args.device)
    loaded = {}
    for label in wanted:
        line = by_label[label]
        if args.batch:
            line = replace(line, batch=args.batch)
        if line.ndim not in loaded:
            loaded[line.ndim] = load_data(args.data_dir, line.ndim)
            data, flag = loaded[line.ndim]
            print(
                f"# data: {flag or 'synthetic'} {line.ndim}D 28 px, "
                f"{args.repeats} repeats, device {device}, threads {torch.get_num_threads()}",
                file=sys.stderr,
            )
        data, flag = loaded[line.ndim]
        steps = args.steps or line.steps
        bench = Bench(line, data, flag, args.data_dir, steps=steps, device=device,
                      reference=not args.no_reference)  # fmt: skip
        print(format_line(label, measure(bench, args.repeats)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
