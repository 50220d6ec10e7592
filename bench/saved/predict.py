"""``bench predict RUN_DIR INPUT``: the run's saved model (its selected ensemble by default)
on new images; one CSV row per input with the class probabilities and the predicted class."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np

TABLE_ROWS = 20  # rows shown on the terminal; the CSV has all of them


def predict_run(run_dir: Path, images: np.ndarray, *, device, seed: int | None = None,
                ensemble: str = "selected") -> np.ndarray:  # fmt: skip
    """Probabilities of the run's model on uint8 ``images`` (in the data's layout): each
    member's fits averaged, then the members' weighted mean, as the run scored them."""
    from bench.saved.fits import ensemble_scores, load_answer
    from bench.train import predict

    answer = load_answer(run_dir, device, seed=seed, ensemble=ensemble)
    scores = []
    for _, fits in answer:
        scores.append([
            predict(f.model, images, spec=f.spec(), device=device, img_size=f.meta["img_size"],
                    mean=f.meta["mean"], std=f.meta["std"])
            for f in fits
        ])  # fmt: skip
    return ensemble_scores(scores, [w for w, _ in answer])


def predicted_names(scores: np.ndarray, meta: dict) -> list[str]:
    """The predicted class name of each row (multi-label: the labels above 0.5, ``;``)."""
    from bench.data.spec import MULTI_LABEL
    from bench.results.intervals import predicted_labels

    names, task = meta["class_names"], meta["task"]
    labels = predicted_labels(scores, task)
    if task == MULTI_LABEL:
        return [";".join(n for n, on in zip(names, row, strict=True) if on) for row in labels]
    return [names[int(i)] for i in np.asarray(labels).reshape(-1)]


def to_csv(names: list[str], scores: np.ndarray, meta: dict) -> str:
    """``input,<class names...>,predicted`` rows, probabilities at full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["input", *meta["class_names"], "predicted"])
    for name, row, label in zip(names, scores, predicted_names(scores, meta), strict=True):
        writer.writerow([name, *(repr(float(v)) for v in row), label])
    return buf.getvalue()


def cmd_predict(args: argparse.Namespace) -> int:
    """Handler of ``bench predict``."""
    from bench.device import resolve_device
    from bench.files import atomic_write_text
    from bench.runtime import check_output_file
    from bench.saved.fits import load_ensemble, read_fit_meta
    from bench.saved.inputs import read_inputs

    run_dir = Path(args.run_dir)
    if args.out:
        check_output_file(Path(args.out), "--out")
    check_flags(seed=args.seed, ensemble=args.ensemble, split=args.split, input=args.input,
                quiet=args.quiet, out=args.out)  # fmt: skip
    data = load_ensemble(run_dir)  # no saved model: one line before any work
    device = resolve_device(args.device)
    meta = read_fit_meta(run_dir, data["members"][0]["fits"][0])  # weights load once, below
    names, images = read_inputs(Path(args.input), meta=meta, split=args.split or "test")
    scores = predict_run(run_dir, images, device=device, seed=args.seed,
                         ensemble=args.ensemble or "selected")  # fmt: skip
    text = to_csv(names, scores, meta)
    if args.out:
        atomic_write_text(Path(args.out).expanduser(), text)
    if not args.quiet:
        _print_table(text, len(names), args.out)
    return 0


def check_flags(*, seed: int | None, ensemble: str | None, split: str | None, input: str,
                quiet: bool, out: str | None) -> None:  # fmt: skip
    """Refuse flags that would be ignored: ``--seed`` with ``--ensemble`` (one fit, or an
    ensemble), ``--split`` for an input that is not an npz, ``--quiet`` without ``--out``
    (nothing shown, nothing written). None: the flag was not given.

    Raises:
        BenchError: one line naming both flags.
    """
    from bench.errors import BenchError

    if seed is not None and ensemble is not None:
        raise BenchError(f"--seed {seed} picks one fit and --ensemble {ensemble} an "
                         "ensemble; give one of them")  # fmt: skip
    if split is not None and Path(input).suffix.lower() != ".npz":
        raise BenchError(f"--split {split} selects a split of an npz input, and "
                         f"{input} is not one; drop --split")  # fmt: skip
    if quiet and not out:
        raise BenchError("--quiet without --out would show and write nothing; give --out FILE "
                         "or drop --quiet")  # fmt: skip


def _print_table(text: str, n: int, out: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = list(csv.reader(io.StringIO(text)))
    table = Table(title=f"{n} input{'s' if n != 1 else ''}")
    for col in rows[0]:
        table.add_column(col)
    for row in rows[1 : TABLE_ROWS + 1]:
        table.add_row(row[0], *(f"{float(v):.4f}" for v in row[1:-1]), row[-1])
    console = Console()
    console.print(table)
    if n > TABLE_ROWS:
        console.print(f"... {n - TABLE_ROWS} more rows" + (f" in {out}" if out else ""))
    if out:
        console.print(f"probabilities: {out}", highlight=False)
