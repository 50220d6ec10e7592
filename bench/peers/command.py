"""``bench peer``: another system on the same data and budget, scored by bench's own scoring
code (:func:`bench.scoring.score_test`), with a record built like every other one
(``kind="peer"``), so it sits in the same leaderboard.

The budget is counted from process start, like ``bench run``; building AutoGluon's venv on
first use is not part of it. A failure inside AutoGluon (non-zero exit, timeout, no output)
still writes a record, with ``status="failed"`` and the reason in ``info``, and exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.errors import ConfigError
from bench.peers.systems import PEERS, PeerOptions, load


def _check_inputs(system: str, *, dataset: str, size: int | None, budget: str, out, python):
    """Every check before any work: (spec, data size, budget_s, out, interpreter, built)."""
    from bench.config import parse_budget
    from bench.data.catalog import get_dataset
    from bench.data.load import default_size
    from bench.data.spec import check_size
    from bench.runtime import check_output_dir

    if system not in PEERS:
        raise ConfigError(f"unknown peer system {system!r}; choose {' or '.join(PEERS)}")
    peer = PEERS[system]
    budget_s = parse_budget(budget)
    spec = get_dataset(dataset)
    data_size = default_size(spec) if size is None else size
    check_size(spec, data_size)
    if spec.ndim not in peer.ndims:
        takes = " or ".join(f"{n}D" for n in peer.ndims)
        raise ConfigError(
            f"{spec.name} is {spec.ndim}D; the {system} peer takes {takes} images only"
        )
    out = Path(out).expanduser()
    check_output_dir(out)
    interpreter, built = None, False
    if peer.prepare is not None:
        interpreter, built = load(peer.prepare)(spec, python=python)
    return spec, data_size, budget_s, out, interpreter, built


def run_peer(
    system: str,
    *,
    dataset: str,
    size: int | None = None,
    data_dir: str | None = None,
    budget: str = "10m",
    out: str | Path = "runs",
    python: str | None = None,
    seed: int = 0,
    backbone: str | None = None,
    img_size: int | None = None,
    pretrained: bool = False,
    hyperparameters: dict | None = None,
    started: float | None = None,
):
    """Run one peer end to end and write its run folder, ``record.json`` last.

    Returns:
        The Record, its run folder and the exit status: 0 ok, 1 the peer failed, 2 it
        failed because of the user's input (e.g. a budget too small for AutoGluon to start).

    Raises:
        BenchError: bad input found before any work (nothing is written then).
    """
    from bench.data.load import load_splits
    from bench.results.records import budget_label, environment, make_run_id
    from bench.runtime import file_flag, process_start

    t0 = process_start() if started is None else started
    spec, data_size, budget_s, out, interpreter, built = _check_inputs(
        system, dataset=dataset, size=size, budget=budget, out=out, python=python
    )
    if built:  # the one-off venv build is not part of the budget
        t0 = time.monotonic()
    splits = load_splits(spec, data_size, data_dir)
    env = environment()  # before the clock-critical part: the worker's deadline allows for it
    run_dir = out / make_run_id(file_flag(spec), data_size, kind="peer",
                                constraint=budget_label(budget_s))  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=False)
    options = PeerOptions(budget_s=budget_s, started=t0, seed=seed, python=interpreter,
                          backbone=backbone, img_size=img_size, pretrained=pretrained,
                          hyperparameters=hyperparameters)  # fmt: skip
    peer = load(PEERS[system].run)(splits, run_dir, options)
    record = _score_and_record(peer, splits, run_dir, seed=seed, budget_s=budget_s, t0=t0, env=env)
    if peer.failure:
        if peer.log_path is not None:
            from bench.peers.autogluon import print_log_tail

            print_log_tail(peer.log_path)
        return record, run_dir, 2 if peer.user_error else 1
    return record, run_dir, 0


def _score_and_record(peer, splits, run_dir: Path, *, seed: int, budget_s: int, t0: float,
                      env: dict):  # fmt: skip
    """Score the peer's test predictions once, then write its record."""
    from bench.files import write_once_json
    from bench.results.records import RECORD_FILE, build_record
    from bench.scoring import keep_test_predictions, score_test

    per_seed, uncertainty = [], {}
    if peer.scores is not None:
        report, _ = score_test(splits, peer.scores, run_dir=run_dir, run_label=f"seed{seed}")
        uncertainty = keep_test_predictions(splits, run_dir, fits={f"seed{seed}": peer.scores},
                                            chosen=[f"seed{seed}"])  # fmt: skip
        per_seed = [{"seed": seed, "test_auc": float(report["auc"]),
                     "test_acc": float(report["acc"]), "val_score": peer.val_score,
                     "best_epoch": None}]  # fmt: skip
    env = dict(env)
    if peer.versions:  # the peer's own interpreter trained the model
        env["torch_version"] = peer.versions.get("torch", env["torch_version"])
        env["python_version"] = peer.versions.get("python", env["python_version"])
    config = {"system": peer.family, "dataset": splits.spec.name,
              "data_size": splits.data_size, "budget_s": budget_s, "seed": seed}  # fmt: skip
    record = build_record(
        run_id=run_dir.name, kind="peer", spec=splits.spec, data_size=splits.data_size,
        method=peer.method, family=peer.family, per_seed=per_seed, config=config,
        params=peer.params, env=env, info=[peer.failure or "", *peer.info],
        img_size=peer.img_size, objective=peer.objective, val_score=peer.val_score,
        augment=peer.augment, n_params=peer.n_params, budget_s=budget_s,
        final_s=peer.fit_s, wall_s=time.monotonic() - t0, device=peer.device,
        citation=peer.citation, peer_versions=peer.versions, **uncertainty,
    )  # fmt: skip
    write_once_json(run_dir / RECORD_FILE, record.as_dict())
    return record


def print_summary(record, run_dir: Path) -> None:
    """One line: the peer's test scores, its times and where the record is."""
    where = f"record {run_dir}/record.json"
    if not record.ok:
        print(f"error: {record.method} on {record.dataset} failed: "
              f"{record.info.split('; ')[0]}; {where}", file=sys.stderr)  # fmt: skip
        return
    print(
        f"{record.method} on {record.dataset}: test AUC {record.test_auc_mean:.3f}, "
        f"ACC {record.test_acc_mean:.3f}; fit {record.final_s}s, wall "
        f"{record.wall_s}s of {record.budget_s}s; {where}"
    )


def cmd_peer(args: argparse.Namespace) -> int:
    """``bench peer autogluon|constant --dataset D --budget B``."""
    record, run_dir, code = run_peer(
        args.system,
        dataset=args.dataset,
        size=args.size,
        data_dir=args.data_dir,
        budget=args.budget,
        out=args.out,
        python=args.python,
        seed=args.seed,
        backbone=getattr(args, "backbone", None),
        img_size=getattr(args, "img_size", None),
        pretrained=bool(getattr(args, "pretrained", False)),
    )
    print_summary(record, run_dir)
    return code
