"""Which final fits a cross-validated ``bench run`` should make: one fixed configuration (a
committed record's), many seeds, three protocols, every fit scored on test at its best-val
checkpoint and at its last epoch.

- ``plain``: the official train split, the official val split for the checkpoint (what
  ``bench run`` without ``--cv`` does);
- ``fold``: the K fold models of train + val (K-1 folds to train, the held-out one for the
  checkpoint), over ``--seeds / K`` fold seeds;
- ``refit``: the whole train + val pool (``bench.data.folds.refit_splits``), no val split: the
  last epoch is what ``bench run --cv`` keeps. Its ``best`` row scores the checkpoint chosen on
  the official val split, which lies inside train (what refitting with a val split would do).

Each row: the mean ± std of the fits' test AUC and ACC, the standard error of the AUC mean,
and the averaged fits (the bag) of the row.

    python benchmarks/cv_protocols.py RECORD.json [RECORD.json ...] --data-dir ../shared/data \
        [--seeds 10] [--k 5] [--out results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np


def fit_both(spec, record: dict, splits, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Test scores of one fit at its best-val checkpoint and at its last epoch, and its best
    epoch (the last one when ``splits`` has no val split)."""
    from bench.models.registry import model_for
    from bench.train import TrainHP, fit, predict, set_seed

    hp, model_params = TrainHP.split_params(record["params"])
    set_seed(seed)
    model = model_for(spec, record["family"], img_size=record["img_size"], **model_params)
    last: dict = {}

    def keep_last(_stats) -> None:
        last["state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    result = fit(model, splits.train_val(), hp, device="cpu", seed=seed,
                 img_size=record["img_size"], on_epoch=keep_last)  # fmt: skip
    args = dict(spec=spec, device="cpu", img_size=record["img_size"], mean=hp.mean, std=hp.std)
    best = predict(model, splits.test.images, **args)
    model.load_state_dict(last["state"])
    return best, predict(model, splits.test.images, **args), result.best_epoch


def protocol_fits(splits, k: int, n: int):
    """``(protocol, seed, Splits)`` of every fit: ``n`` of each protocol."""
    from bench.data.folds import fold_splits, refit_splits

    # the official val split beside the pool only for the "best" row: it does not change
    # the training, so the last epoch is exactly bench run --cv's refit
    refit = dataclasses.replace(refit_splits(splits), val=splits.val)
    for i in range(n):
        yield "plain", 100 + i, splits
        yield "refit", 100 + i, refit
    for fold_seed in range(max(1, n // k)):
        for seed, part in fold_splits(splits, k, fold_seed):
            yield "fold", 200 + 10 * fold_seed + seed, part


def summarize(test, task: str, fits: dict) -> dict:
    """One row per protocol and checkpoint: the fits' mean, std and bag on test."""
    from bench.scoring import classification_report

    def report(scores) -> tuple[float, float]:
        r = classification_report(test.labels, scores, task)
        return float(r["auc"]), float(r["acc"])

    rows = {}
    for name, runs in fits.items():
        for which, j in (("best", 0), ("last", 1)):
            per_fit = np.array([report(r[j]) for r in runs])
            bag = report(np.mean([r[j] for r in runs], axis=0))
            auc, acc = per_fit[:, 0], per_fit[:, 1]
            rows[f"{name}-{which}"] = {
                "n": len(runs), "auc": auc.mean(), "auc_std": auc.std(ddof=1),
                "auc_se": auc.std(ddof=1) / np.sqrt(len(runs)), "acc": acc.mean(),
                "acc_std": acc.std(ddof=1), "bag_auc": bag[0], "bag_acc": bag[1],
                "best_epochs": [r[2] for r in runs],
            }  # fmt: skip
    return rows


def main() -> None:
    from bench.data.load import load_splits

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("records", nargs="+", type=Path, help="records whose configuration to fit")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--seeds", type=int, default=10, help="fits per protocol (default 10)")
    ap.add_argument("--k", type=int, default=5, help="folds of the fold protocol (default 5)")
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = ap.parse_args()
    results = {}
    for path in args.records:
        record = json.loads(path.read_text())
        splits = load_splits(record["dataset"], record["data_size"], args.data_dir)
        assert record["augment"] == "none", "this experiment fits configurations without one"
        fits: dict = {"plain": [], "fold": [], "refit": []}
        start = time.monotonic()
        for name, seed, part in protocol_fits(splits, args.k, args.seeds):
            fits[name].append(fit_both(splits.spec, record, part, seed))
        rows = summarize(splits.test, splits.spec.task, fits)
        results[record["run_id"]] = {"record": path.name, "seconds": time.monotonic() - start,
                                     "rows": rows}  # fmt: skip
        print(f"\n{record['run_id']} ({record['family']}, {record['epochs']} epochs), "
              f"{time.monotonic() - start:.0f}s")  # fmt: skip
        print(f"{'protocol':12s} {'n':>3s}  {'test AUC':>15s} {'se':>6s}  {'test ACC':>15s}  bag")
        for key, r in rows.items():
            print(f"{key:12s} {r['n']:3d}  {r['auc']:.4f} ± {r['auc_std']:.4f} "
                  f"{r['auc_se']:.4f}  {r['acc']:.4f} ± {r['acc_std']:.4f}  "
                  f"{r['bag_auc']:.4f} / {r['bag_acc']:.4f}")  # fmt: skip
    if args.out is not None:
        from bench.files import write_json

        write_json(args.out, results)


if __name__ == "__main__":
    main()
