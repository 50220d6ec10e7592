"""``bench predict RUN_DIR INPUT``: the run's saved model (its selected ensemble by default)
on new images; one CSV row per input (:mod:`bench.results.predict_csv`: the index, the class
probabilities, the predicted class and the sizes) that ``bench evaluate`` reads back, and one
notice on stderr when inputs were resized."""

from __future__ import annotations

import argparse
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
    from bench.results.predict_csv import LABEL_SEP

    names, task = meta["class_names"], meta["task"]
    labels = predicted_labels(scores, task)
    if task == MULTI_LABEL:
        return [LABEL_SEP.join(n for n, on in zip(names, row, strict=True) if on) for row in labels]
    return [names[int(i)] for i in np.asarray(labels).reshape(-1)]


def prediction_table(inputs, scores: np.ndarray, meta: dict):
    """The :class:`~bench.results.predict_csv.PredictTable` of ``scores`` on ``inputs``."""
    from bench.results.predict_csv import PredictTable, size_text

    return PredictTable(
        class_names=tuple(meta["class_names"]), index=inputs.names, scores=scores,
        predicted=tuple(predicted_names(scores, meta)), split=inputs.split,
        original_size=tuple(size_text(s) for s in inputs.shapes),
        resized_to=(size_text(inputs.shape),) * len(inputs.names),
    )  # fmt: skip


def resize_notice(inputs) -> str | None:
    """One line when some inputs were resized to the model's data size: how many, from which
    sizes, to which, with which filter; None when none was."""
    from bench.data.folder import RESIZE_FILTER
    from bench.results.predict_csv import size_text

    resized = inputs.resized()
    if not resized:
        return None
    sizes = list(dict.fromkeys(size_text(s) for s in resized))
    shown = ", ".join(sizes[:3]) + (f" and {len(sizes) - 3} more sizes" if len(sizes) > 3 else "")
    return (f"note: resized {len(resized)} of {len(inputs.names)} input"
            f"{'s' if len(inputs.names) != 1 else ''} from {shown} to "
            f"{size_text(inputs.shape)}, the run's data size, with {RESIZE_FILTER}")  # fmt: skip


def cmd_predict(args: argparse.Namespace) -> int:
    """Handler of ``bench predict``."""
    import sys

    from bench.device import resolve_device
    from bench.files import atomic_write_text
    from bench.results.predict_csv import to_text
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
    inputs = read_inputs(Path(args.input), meta=meta, split=args.split or "test")
    notice = resize_notice(inputs)
    if notice:
        print(notice, file=sys.stderr)
    scores = predict_run(run_dir, inputs.images, device=device, seed=args.seed,
                         ensemble=args.ensemble or "selected")  # fmt: skip
    table = prediction_table(inputs, scores, meta)
    if args.out:
        atomic_write_text(Path(args.out).expanduser(), to_text(table))
    if not args.quiet:
        _print_table(table, args.out)
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


def _print_table(table, out: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    n = len(table.index)
    view = Table(title=f"{n} input{'s' if n != 1 else ''}")
    for col in ("index", *table.class_names, "predicted"):
        view.add_column(col)
    for i in range(min(n, TABLE_ROWS)):
        view.add_row(table.index[i], *(f"{float(v):.4f}" for v in table.scores[i]),
                     table.predicted[i])  # fmt: skip
    console = Console()
    console.print(view)
    if n > TABLE_ROWS:
        console.print(f"... {n - TABLE_ROWS} more rows" + (f" in {out}" if out else ""))
    if out:
        console.print(f"probabilities: {out}", highlight=False)
