"""``bench peer``: other systems on the same data and budget, scored by bench's metrics, with
records in ``bench run``'s format (``kind="peer"``) so they sit in the same leaderboard.

- ``constant``: predicts the train prior (class frequencies, or per-label rates for
  multi-label) for every test image: the floor row (AUC 0.5 by construction).
- ``autogluon``: AutoGluon's MultiModalPredictor in its own venv (see
  :mod:`bench.peer_autogluon`); multi-label datasets are not supported (one-line error).

The budget is counted from process start, like ``bench run``; building AutoGluon's venv on
first use is not part of it. A failure inside AutoGluon (non-zero exit, timeout, no output)
still writes a record, with ``status="failed"`` and the reason in ``info``, and exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.data.catalog import MULTI_LABEL
from bench.errors import ConfigError

AUTOGLUON_CITATION = (
    "Tang et al., AutoGluon-Multimodal (AutoMM): Supercharging Multimodal AutoML with "
    "Foundation Models, AutoML Conf 2024, arXiv:2404.16233"
)
CONSTANT_METHOD = "Constant (train prior)"


@dataclass
class PeerResult:
    """What one peer produced, before bench scores it."""

    method: str
    family: str
    img_size: int
    params: dict
    scores: np.ndarray | None = None
    failure: str | None = None
    user_error: bool = False
    objective: str = "none"
    val_score: float | None = None
    augment: str = "none"
    n_params: int | None = None
    fit_s: float = 0.0
    device: str = "cpu"
    citation: str = ""
    versions: dict = field(default_factory=dict)
    info: list[str] = field(default_factory=list)
    log_path: Path | None = None


def train_prior(labels: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    """Class frequencies of the train labels (per-label positive rates for multi-label)."""
    labels = np.asarray(labels)
    if task == MULTI_LABEL:
        return labels.astype(np.float64).mean(axis=0)
    counts = np.bincount(labels.reshape(-1), minlength=n_classes).astype(np.float64)
    return counts / counts.sum()


def constant_peer(splits) -> PeerResult:
    """The floor: the train prior as the score of every test image."""
    t = time.monotonic()
    prior = train_prior(splits.train.labels, splits.spec.task, splits.spec.n_classes)
    scores = np.tile(prior, (len(splits.test), 1))
    return PeerResult(
        method=CONSTANT_METHOD,
        family="constant",
        img_size=splits.data_size,
        params={"prior": [round(float(p), 6) for p in prior]},
        scores=scores,
        fit_s=time.monotonic() - t,
    )


def autogluon_peer(
    splits,
    run_dir: Path,
    *,
    python: Path,
    budget_s: float,
    started: float,
    seed: int,
    backbone: str,
    img_size: int,
    pretrained: bool,
    hyperparameters: dict | None = None,
) -> PeerResult:
    """Fit AutoGluon MultiModal on train/val within the budget; its test probabilities."""
    from bench.peer_autogluon import DEFAULT_PRESET, run_autogluon

    hp = {"model.timm_image.image_size": img_size, **(hyperparameters or {})}
    out = run_autogluon(
        splits, run_dir, python=python, budget_s=budget_s, started=started, seed=seed,
        backbone=backbone, preset=DEFAULT_PRESET, pretrained=pretrained, hyperparameters=hp,
    )  # fmt: skip
    res = out.result
    img = int(res.get("img_size") or img_size)
    params = {
        "preset": DEFAULT_PRESET,
        "backbone": backbone,
        "pretrained": bool(pretrained),
        "img_size": img,
        "time_limit_s": round(res["time_limit_s"], 1) if "time_limit_s" in res else None,
        "max_epochs": res.get("max_epochs"),
        "hyperparameters": hp,
    }
    info = [f"export {out.export_s:.1f}s", f"worker {out.worker_s:.1f}s"]
    if "setup_s" in res:
        info.append(f"fit {res['fit_s']:.1f}s, predict {res['predict_s']:.1f}s")
    return PeerResult(
        method=f"AutoGluon MultiModal ({img})",
        family="autogluon",
        img_size=img,
        params=params,
        scores=out.scores,
        failure=out.failure,
        user_error=out.user_error,
        objective=res.get("eval_metric") or "",
        val_score=res.get("val_score"),
        augment="autogluon (trivial_augment)",
        n_params=res.get("n_params"),
        fit_s=float(res.get("fit_s", out.worker_s)),
        device=res.get("device", "cpu"),
        citation=AUTOGLUON_CITATION,
        versions=res.get("versions", {}),
        info=info,
        log_path=out.log_path,
    )


def environment() -> dict:
    """Provenance and hardware fields of a record (slow-ish: imports torch, runs git)."""
    from bench.device import hardware
    from bench.records import provenance

    return {**provenance(), "hardware": hardware()}


def make_record(
    peer: PeerResult,
    splits,
    *,
    run_id: str,
    seed: int,
    budget_s: int,
    wall_s: float,
    final_s: float,
    report: dict | None,
    env: dict,
) -> dict:
    """The record, with every field ``bench run`` writes (docs/interfaces.md); ``env`` from
    :func:`environment`."""
    from bench.records import NO_SEARCH, utc_iso

    prov = dict(env)
    if peer.versions:  # the peer's own interpreter trained the model
        prov["torch_version"] = peer.versions.get("torch", prov["torch_version"])
        prov["python_version"] = peer.versions.get("python", prov["python_version"])
    ok = report is not None
    auc = float(report["auc"]) if ok else None
    acc = float(report["acc"]) if ok else None
    config = {"system": peer.family, "dataset": splits.spec.name, "data_size": splits.data_size,
              "budget_s": budget_s, "seed": seed}  # fmt: skip
    digest = json.dumps({"config": config, "params": peer.params}, sort_keys=True, default=str)
    info = list(peer.info)
    if peer.failure:
        info.insert(0, peer.failure)
    return {
        "run_id": run_id,
        "source": "bench",
        "kind": "peer",
        "status": "ok" if ok else "failed",
        "method": peer.method,
        "family": peer.family,
        "dataset": splits.spec.name,
        "task": splits.spec.task,
        "data_size": splits.data_size,
        "img_size": peer.img_size,
        "test_auc_mean": auc,
        "test_auc_std": 0.0 if ok else None,
        "test_acc_mean": acc,
        "test_acc_std": 0.0 if ok else None,
        "n_seeds": 1,
        "seeds": str(seed),
        "objective": peer.objective,
        "val_score": peer.val_score,
        "augment": peer.augment,
        "params": peer.params,
        "config_hash": hashlib.sha256(digest.encode()).hexdigest()[:12],
        "n_params": peer.n_params,
        "budget_s": budget_s,
        "search_s": int(round(peer.fit_s)),
        "final_s": int(round(final_s)),
        "wall_s": int(round(wall_s)),
        **NO_SEARCH,
        "device": peer.device,
        **prov,
        "peer_versions": peer.versions,
        "utc": utc_iso(),
        "citation": peer.citation,
        "info": "; ".join(info),
        "per_seed": [
            {
                "seed": seed,
                "test_auc": auc,
                "test_acc": acc,
                "val_score": peer.val_score,
                "best_epoch": None,
            }
        ]
        if ok
        else [],  # fmt: skip
        "epochs": None,
    }


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
) -> tuple[dict, int]:
    """Run one peer end to end and write its run folder, ``record.json`` last.

    Returns:
        The record (plus ``run_dir``) and the exit status: 0 ok, 1 the peer failed, 2 it
        failed because of the user's input (e.g. a budget too small for AutoGluon to start).

    Raises:
        BenchError: bad input found before any work (nothing is written then).
    """
    from bench.config import parse_budget
    from bench.data.catalog import check_size, get_dataset
    from bench.data.load import default_size, load_splits
    from bench.metrics import classification_report
    from bench.records import (
        RECORD_FILE,
        make_run_id,
        prediction_file_name,
        write_once_json,
        write_predictions,
    )
    from bench.runner import _file_flag, check_writable, process_start

    t0 = process_start() if started is None else started
    budget_s = parse_budget(budget)
    spec = get_dataset(dataset)
    data_size = size or default_size(spec)
    check_size(spec, data_size)
    if spec.ndim != 2:
        raise ConfigError(f"{spec.name} is 3D; the peers take 2D datasets only")
    out = Path(out).expanduser()
    check_writable(out)
    if system == "autogluon":
        from bench.peer_autogluon import DEFAULT_BACKBONE, problem_type
        from bench.peer_venv import resolve_python

        problem_type(spec.task)  # multi-label: one-line error before any work
        interpreter, built = resolve_python(python)
        if built:  # the one-off venv build is not part of the budget
            t0 = time.monotonic()
    elif system != "constant":
        raise ConfigError(f"unknown peer system {system!r}; choose autogluon or constant")

    splits = load_splits(spec, data_size, data_dir)
    env = environment()  # before the clock-critical part: the worker's deadline allows for it
    family = "constant" if system == "constant" else "autogluon"
    run_id = make_run_id(_file_flag(spec), data_size, family)
    run_dir = out / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    if system == "constant":
        peer = constant_peer(splits)
    else:
        print(
            f"bench peer autogluon: {spec.name} ({data_size} px), budget {budget_s} s, "
            f"run folder {run_dir}"
        )
        peer = autogluon_peer(
            splits, run_dir, python=interpreter, budget_s=budget_s, started=t0, seed=seed,
            backbone=backbone or DEFAULT_BACKBONE, img_size=img_size or data_size,
            pretrained=pretrained, hyperparameters=hyperparameters,
        )  # fmt: skip

    t_score = time.monotonic()
    report = None
    if peer.scores is not None:
        report = classification_report(splits.test.labels, peer.scores, spec.task)
        name = prediction_file_name(_file_flag(spec), data_size, "test", report["auc"],
                                    report["acc"], f"seed{seed}")  # fmt: skip
        write_predictions(run_dir / "predictions" / name, peer.scores)
    now = time.monotonic()
    record = make_record(peer, splits, run_id=run_id, seed=seed, budget_s=budget_s,
                         wall_s=now - t0, final_s=now - t_score, report=report,
                         env=env)  # fmt: skip
    write_once_json(run_dir / RECORD_FILE, record)
    record["run_dir"] = str(run_dir)
    if peer.failure:
        if peer.log_path is not None:
            from bench.peer_autogluon import print_log_tail

            print_log_tail(peer.log_path)
        return record, 2 if peer.user_error else 1
    return record, 0


def print_summary(record: dict) -> None:
    """One line: the peer's test scores, its times and where the record is."""
    if record["status"] != "ok":
        print(f"error: {record['method']} on {record['dataset']} failed: "
              f"{record['info'].split('; ')[0]}; record {record['run_dir']}/record.json",
              file=sys.stderr)  # fmt: skip
        return
    print(
        f"{record['method']} on {record['dataset']}: test AUC {record['test_auc_mean']:.3f}, "
        f"ACC {record['test_acc_mean']:.3f}; fit {record['search_s']}s, wall "
        f"{record['wall_s']}s of {record['budget_s']}s; record {record['run_dir']}/record.json"
    )


def cmd_peer(args: argparse.Namespace) -> int:
    """``bench peer autogluon|constant --dataset D --budget B``."""
    record, code = run_peer(
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
    print_summary(record)
    return code
