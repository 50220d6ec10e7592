"""Fit AutoGluon's MultiModalPredictor on exported images and predict the test images.

A standalone script run by the interpreter of AutoGluon's own venv (AutoGluon pins an older
torch than bench): it imports nothing from bench. bench and this script talk only through
files: ``python autogluon_worker.py --job JOB.json``.

The job file (written by ``bench.peers.autogluon``) names the CSV files (``image`` absolute
path, ``label`` class index; the test CSV has no ``label`` column), the outputs, the problem
type, the class indices, the backbone, the preset, the seed, whether to use pretrained
weights, an absolute ``deadline`` (Unix time) for fit plus prediction and ``reserve_s``, the
seconds kept back from the fit for prediction. The script writes:

- ``probs_path``: an ``.npy`` float64 array (n_test, n_classes), columns in class order;
- ``result_path``: JSON with status, times, validation score, versions (written last).

Offline (``pretrained`` false), AutoGluon's ``fit()`` would still build its timm backbone
with ``pretrained=True`` and reach for the Hugging Face hub. Instead the backbone is created
here from timm with random weights and saved as a local checkpoint folder
(``pytorch_model.bin`` + ``config.json`` with ``architecture``, ``num_features`` and
``pretrained_cfg``, the layout of AutoGluon's own ``TimmAutoModelForImagePrediction.save``),
whose path is passed as ``model.timm_image.checkpoint_name``. AutoGluon's code is not patched.

Exit status: 0 done; 3 no time was left for the fit; 4 the backbone is not a timm model;
any other non-zero: AutoGluon failed.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder (bench's peer modules: autogluon.py, venv.py) would
# come first on sys.path and shadow the real ``autogluon`` package and the stdlib ``venv``.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

MIN_FIT_S = 5.0
NO_TIME_EXIT = 3
BAD_BACKBONE_EXIT = 4


def _write_atomic(path: str, write) -> None:
    """``write(tmp)``, then ``os.replace(tmp, path)``. This script runs in AutoGluon's own venv,
    where bench is not importable, so it keeps this copy of :func:`bench.files.atomic_path`."""
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: str, data: dict) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)

    _write_atomic(path, write)


def local_checkpoint(backbone: str, folder: str, seed: int) -> str:
    """A timm backbone with random weights saved in AutoGluon's local checkpoint layout."""
    import timm
    import torch
    from autogluon.multimodal.utils.config import filter_timm_pretrained_cfg

    torch.manual_seed(seed)
    model = timm.create_model(backbone, pretrained=False, num_classes=0)
    cfg = filter_timm_pretrained_cfg(dict(model.pretrained_cfg), remove_source=True)
    cfg.setdefault("architecture", backbone)
    config = {
        "architecture": cfg.pop("architecture"),
        "num_classes": 0,
        "num_features": int(model.num_features),
        "pretrained_cfg": cfg,
    }
    os.makedirs(folder, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(folder, "pytorch_model.bin"))
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    return folder


def n_parameters(predictor) -> int | None:
    """Parameter count of the fitted network, if AutoGluon exposes it."""
    model = getattr(getattr(predictor, "_learner", None), "_model", None)
    if model is None:
        return None
    return int(sum(p.numel() for p in model.parameters()))


def fit_and_predict(job: dict) -> dict:
    """Fit within the job's deadline, write the test probabilities, return the result."""
    from autogluon.multimodal import MultiModalPredictor  # slow: before the time limit is set

    start = time.time()
    if job["pretrained"]:
        checkpoint = job["backbone"]
    else:
        checkpoint = local_checkpoint(job["backbone"], job["checkpoint_dir"], job["seed"])
    time_limit = job["deadline"] - time.time() - job["reserve_s"]
    if time_limit < MIN_FIT_S:
        print(
            f"worker error: only {time_limit:.1f} s left for the fit after start-up; "
            "give a larger budget",
            file=sys.stderr,
        )
        raise SystemExit(NO_TIME_EXIT)
    predictor = MultiModalPredictor(
        label="label",
        problem_type=job["problem_type"],
        path=job["predictor_dir"],
        presets=job["preset"],
        verbosity=2,
    )
    t_fit, fit_s = fit(predictor, job, checkpoint=checkpoint, time_limit=time_limit)
    predict_s = predict(job, predictor)
    times = {"time_limit_s": time_limit, "setup_s": t_fit - start, "fit_s": fit_s,
             "predict_s": predict_s}  # fmt: skip
    return {"status": "ok", **times, "checkpoint": checkpoint, **describe(predictor)}


def fit(predictor, job: dict, *, checkpoint: str, time_limit: float) -> tuple[float, float]:
    """AutoGluon's fit on train (val to tune); (fit start time, fit seconds)."""
    import pandas as pd

    train = pd.read_csv(job["train_csv"])
    val = pd.read_csv(job["val_csv"])
    hyperparameters = {
        "model.names": ["timm_image"],
        "model.timm_image.checkpoint_name": checkpoint,
        **job.get("hyperparameters", {}),
    }
    print(f"worker: fit with time_limit={time_limit:.1f} s", flush=True)
    t_fit = time.time()
    predictor.fit(
        train_data=train,
        tuning_data=val,
        time_limit=int(time_limit),
        hyperparameters=hyperparameters,
        seed=job["seed"],
    )
    return t_fit, time.time() - t_fit


def predict(job: dict, predictor) -> float:
    """Write the test probabilities (columns in class order); returns the seconds taken."""
    import numpy as np
    import pandas as pd

    # Test images are read only now, after the fit; their CSV has no labels.
    t_pred = time.time()
    test = pd.read_csv(job["test_csv"])
    proba = predictor.predict_proba(test, as_pandas=True)
    classes = job["classes"]
    columns = {int(c): proba[c].to_numpy(dtype=np.float64) for c in proba.columns}
    probs = np.stack([columns.get(c, np.zeros(len(test))) for c in classes], axis=1)
    predict_s = time.time() - t_pred

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, probs)

    _write_atomic(job["probs_path"], write)
    return predict_s


def describe(predictor) -> dict:
    """What the record says about the fitted predictor: device, val score, metric, size,
    input size, epochs and the versions that trained it."""
    import autogluon.multimodal
    import timm
    import torch

    learner = getattr(predictor, "_learner", None)
    best = getattr(learner, "_best_score", None)
    config = getattr(learner, "_config", None)
    img_size = getattr(getattr(learner, "_model", None), "image_size", None)
    device = f"cuda:{torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    return {
        "device": device,
        "val_score": float(best) if best is not None else None,
        "eval_metric": str(getattr(predictor, "eval_metric", "") or ""),
        "n_params": n_parameters(predictor),
        "img_size": int(img_size) if img_size is not None else None,
        "max_epochs": int(config.optim.max_epochs) if config is not None else None,
        "versions": {
            "autogluon": autogluon.multimodal.__version__,
            "torch": torch.__version__,
            "timm": timm.__version__,
            "python": sys.version.split()[0],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True, help="job JSON written by bench")
    args = parser.parse_args(argv)
    with open(args.job, encoding="utf-8") as f:
        job = json.load(f)
    if not job["pretrained"]:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import timm  # fast to import: check the backbone before AutoGluon's slow import

    if not timm.is_model(job["backbone"]):
        print(
            f"worker error: unknown timm backbone {job['backbone']!r} (timm {timm.__version__})",
            file=sys.stderr,
        )
        return BAD_BACKBONE_EXIT
    result = fit_and_predict(job)
    _write_json(job["result_path"], result)
    print("worker: done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
