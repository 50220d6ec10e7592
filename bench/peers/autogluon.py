"""AutoGluon MultiModal as a peer: export the splits as PNG files, run
``autogluon_worker.py`` in AutoGluon's own interpreter under a hard timeout, read back
its test probabilities.

Budget (``budget_s`` counted from ``started``, a ``time.monotonic()`` value taken before the
data were loaded):

- the worker's fit + prediction must end by ``started + budget_s - SCORE_RESERVE_S``; the
  worker sets AutoGluon's ``time_limit`` to that deadline less its own start-up (importing
  AutoGluon takes 10-20 s) and less an estimate of prediction time (``predict_reserve``);
- a hard timeout kills the worker's whole process group at ``started + HARD_FRACTION *
  budget_s``, so ``bench peer`` always ends within the budget plus 5 %.

The fit never sees test labels: the test images are written without labels to a folder and
CSV of their own, which the worker reads only after ``fit()`` has returned.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.data.spec import MULTI_LABEL
from bench.data.splits import Split, Splits
from bench.errors import BenchError
from bench.files import atomic_write_text
from bench.peers.result import PeerResult
from bench.peers.systems import PeerOptions

WORKER = Path(__file__).with_name("autogluon_worker.py")
DEFAULT_BACKBONE = "mobilenetv3_large_100"  # the backbone of AutoGluon's medium_quality preset
DEFAULT_PRESET = "medium_quality"
SCORE_RESERVE_S = 5.0  # bench's own scoring and record writing after the worker
HARD_FRACTION = 1.04  # kill the worker at 104 % of the budget (the limit is 105 %)
NO_TIME_EXIT = 3  # the worker's exit status when no time was left for the fit
BAD_BACKBONE_EXIT = 4  # the worker's exit status for a backbone timm does not know
LOG_TAIL = 15
AUTOGLUON_CITATION = (
    "Tang et al., AutoGluon-Multimodal (AutoMM): Supercharging Multimodal AutoML with "
    "Foundation Models, AutoML Conf 2024, arXiv:2404.16233"
)
PROGRESS_EVERY_S = 30.0


@dataclass
class AutoGluonOutcome:
    """What the worker produced: test scores, or the reason it failed."""

    scores: np.ndarray | None
    failure: str | None = None
    user_error: bool = False  # the budget was too small: exit 2 rather than 1
    result: dict = field(default_factory=dict)  # the worker's result.json
    export_s: float = 0.0
    worker_s: float = 0.0
    log_path: Path | None = None


def problem_type(task: str) -> str:
    """AutoGluon's problem type for a MedMNIST task; multi-label is not supported.

    Raises:
        BenchError: multi-label tasks (MultiModalPredictor predicts one label column).
    """
    if task == MULTI_LABEL:
        raise BenchError(
            "the autogluon peer does not support multi-label datasets (chestmnist): "
            "MultiModalPredictor predicts one label column; use `bench peer constant` there"
        )
    return "binary" if task == "binary-class" else "multiclass"


def _to_pil(image: np.ndarray):
    from PIL import Image

    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return Image.fromarray(np.ascontiguousarray(image))


def export_split(split: Split, folder: Path, csv_path: Path, *, with_labels: bool) -> None:
    """Write each image as ``folder/NNNNNN.png`` and a CSV ``image[,label]`` of absolute paths.

    Raises:
        BenchError: 3D volumes (the peer takes 2D images only).
    """
    if split.images.ndim == 4 and split.images.shape[-1] not in (1, 3):
        raise BenchError("the autogluon peer takes 2D images only, not 3D volumes")
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["image,label" if with_labels else "image"]
    for i in range(len(split)):
        path = (folder / f"{i:06d}.png").resolve()
        _to_pil(split.images[i]).save(path, compress_level=1)
        rows.append(f"{path},{int(split.labels[i, 0])}" if with_labels else str(path))
    atomic_write_text(csv_path, "\n".join(rows) + "\n")


def predict_reserve(n_val: int, n_test: int, *, budget_s: float) -> float:
    """Seconds kept back from AutoGluon's ``time_limit`` for what follows it.

    Lightning's timer starts after AutoGluon's own preparation, and after the fit AutoGluon
    averages its top-3 checkpoints (up to three passes over val), saves, then predicts test.
    Measured on BreastMNIST with a 75 s budget on this 2-core CPU: 13 s past the time limit,
    then 2 s of prediction. Hence 10 s, plus 20 ms per image pass, plus 2 % of the budget;
    at most a quarter of the budget.
    """
    return min(10.0 + 0.02 * (3 * n_val + n_test) + 0.02 * budget_s, 0.25 * budget_s)


def _tail(path: Path, n: int = LOG_TAIL) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _last_error_line(path: Path) -> str:
    """The last line of the worker's log that names an exception or a worker error."""
    for line in reversed(_tail(path, 200).splitlines()):
        s = line.strip()
        head = s.split(":", 1)[0]
        if s.startswith("worker error:") or (":" in s and head.endswith(("Error", "Exception"))):
            return s
    return ""


def _progress(path: Path) -> str:
    """AutoGluon's latest checkpoint line (epoch, step, validation score), shortened."""
    for line in reversed(_tail(path, 400).splitlines()):
        s = line.strip()
        if s.startswith("Epoch ") and "val_" in s:
            return s.split(", saving model")[0][:100]
        if s.startswith("worker:"):
            return s[:100]
    return "starting"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_worker(
    python: Path, job_path: Path, log_path: Path, *, timeout: float, env: dict, log=print
):
    """Run the worker in its own process group; returns ``(exit code or None on timeout,
    seconds)``. On timeout or interrupt the whole group is killed. A progress line goes to
    ``log`` every ``PROGRESS_EVERY_S`` seconds."""
    t = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            [str(python), str(WORKER), "--job", str(job_path)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        end = t + max(timeout, 0.1)
        try:
            while True:
                try:
                    code = proc.wait(
                        timeout=max(0.1, min(PROGRESS_EVERY_S, end - time.monotonic()))
                    )
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= end:
                        _kill_group(proc)
                        return None, time.monotonic() - t
                    log(f"  {time.monotonic() - t:4.0f} s: {_progress(log_path)}")
        except BaseException:
            _kill_group(proc)
            raise
    return code, time.monotonic() - t


def run_autogluon(
    splits: Splits,
    run_dir: Path,
    *,
    python: Path,
    budget_s: float,
    started: float,
    seed: int = 0,
    backbone: str = DEFAULT_BACKBONE,
    preset: str = DEFAULT_PRESET,
    pretrained: bool = False,
    hyperparameters: dict | None = None,
    log=print,
) -> AutoGluonOutcome:
    """Export ``splits``, fit AutoGluon within the budget, return its test probabilities.

    Args:
        splits: the data; the test split goes to the worker without labels.
        run_dir: ``OUT/<run_id>``; artefacts go to ``ag_export/`` and ``ag_model/`` in it.
        python: AutoGluon's interpreter.
        budget_s: the whole peer run's budget, counted from ``started``.
        started: ``time.monotonic()`` when the peer run began.
        seed: AutoGluon's seed (and the random backbone's).
        backbone: timm model name.
        preset: AutoGluon preset.
        pretrained: let AutoGluon download pretrained weights (needs the network).
        hyperparameters: extra AutoGluon hyperparameters (tests use them to keep fits tiny).
        log: where progress lines go.
    """
    export = run_dir / "ag_export"
    export_s = _export(splits, export, log)
    job = _job(splits, run_dir, export, backbone=backbone, preset=preset, pretrained=pretrained,
               seed=seed, deadline_s=started + budget_s - SCORE_RESERVE_S - time.monotonic(),
               budget_s=budget_s, hyperparameters=hyperparameters)  # fmt: skip
    job_path = export / "job.json"
    atomic_write_text(job_path, json.dumps(job, indent=2) + "\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if not pretrained:
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    log_path = export / "worker.log"
    timeout = started + HARD_FRACTION * budget_s - time.monotonic()
    log(f"AutoGluon fits in {python} (log: {log_path}); hard stop in {timeout:.0f} s")
    code, worker_s = run_worker(python, job_path, log_path, timeout=timeout, env=env, log=log)
    out = AutoGluonOutcome(scores=None, export_s=export_s, worker_s=worker_s, log_path=log_path)
    out.failure, out.user_error = _exit_failure(code, log_path, worker_s=worker_s,
                                                budget_s=budget_s)  # fmt: skip
    if out.failure is None:
        _read_output(out, job, splits)
    return out


def _export(splits: Splits, export: Path, log) -> float:
    """Write the splits as PNG files and CSVs (test without labels); returns the seconds."""
    t = time.monotonic()
    for name in ("train", "val"):
        export_split(getattr(splits, name), export / name, export / f"{name}.csv", with_labels=True)
    export_split(splits.test, export / "test", export / "test.csv", with_labels=False)
    export_s = time.monotonic() - t
    log(
        f"exported {len(splits.train)}/{len(splits.val)}/{len(splits.test)} images "
        f"to {export} in {export_s:.1f} s"
    )
    return export_s


def _job(splits, run_dir: Path, export: Path, *, backbone, preset, pretrained, seed,
         deadline_s: float, budget_s: float, hyperparameters) -> dict:  # fmt: skip
    """The worker's job file: inputs, outputs, settings, the deadline as Unix time."""
    return {
        "train_csv": str((export / "train.csv").resolve()),
        "val_csv": str((export / "val.csv").resolve()),
        "test_csv": str((export / "test.csv").resolve()),
        "predictor_dir": str((run_dir / "ag_model").resolve()),
        "checkpoint_dir": str((export / "backbone").resolve()),
        "probs_path": str((export / "test_probs.npy").resolve()),
        "result_path": str((export / "result.json").resolve()),
        "problem_type": problem_type(splits.spec.task),
        "classes": list(range(splits.spec.n_classes)),
        "backbone": backbone,
        "preset": preset,
        "pretrained": bool(pretrained),
        "seed": int(seed),
        "deadline": time.time() + deadline_s,
        "reserve_s": predict_reserve(len(splits.val), len(splits.test), budget_s=budget_s),
        "hyperparameters": dict(hyperparameters or {}),
    }


def _exit_failure(code, log_path: Path, *, worker_s: float, budget_s: float):
    """(failure reason or None, whether it is the user's input) from the worker's exit."""
    hint = _last_error_line(log_path)
    detail = f" ({hint})" if hint else ""
    if code is None:
        return (
            f"AutoGluon did not finish within the budget: killed after "
            f"{worker_s:.0f} s, at {HARD_FRACTION:.0%} of {budget_s:.0f} s{detail}"
        ), False
    if code == NO_TIME_EXIT:
        return (
            f"budget {budget_s:.0f} s is too small for AutoGluon: no time left for "
            f"the fit after its start-up{detail}; give a larger --budget (e.g. 5m)"
        ), True
    if code == BAD_BACKBONE_EXIT:
        return f"{hint or 'unknown backbone'}; choose a timm model name for --backbone", True
    if code != 0:
        return f"AutoGluon worker exited with status {code}{detail}; see {log_path}", False
    return None, False


def _read_output(out: AutoGluonOutcome, job: dict, splits: Splits) -> None:
    """Fill ``out`` with the worker's result and test probabilities, or the failure."""
    try:
        out.result = json.loads(Path(job["result_path"]).read_text(encoding="utf-8"))
        scores = np.load(job["probs_path"])
    except (OSError, ValueError) as exc:
        out.failure = f"AutoGluon worker left no usable output ({exc}); see {out.log_path}"
        return
    if scores.shape != (len(splits.test), splits.spec.n_classes) or not np.isfinite(scores).all():
        out.failure = (
            f"AutoGluon worker wrote probabilities of shape {scores.shape}, expected "
            f"({len(splits.test)}, {splits.spec.n_classes}) finite values"
        )
        return
    out.scores = scores


def print_log_tail(log_path: Path) -> None:
    """Show the end of the worker's log on stderr (after a failure)."""
    tail = _tail(log_path)
    if tail:
        print(f"--- last lines of {log_path} ---\n{tail}", file=sys.stderr)


def prepare(spec, *, python: str | None) -> tuple[Path, bool]:
    """Before any work: a one-line error for a task AutoGluon is not given (multi-label),
    then AutoGluon's interpreter and whether its venv was built just now."""
    from bench.peers.venv import resolve_python

    problem_type(spec.task)
    return resolve_python(python)


def autogluon_peer(splits, run_dir: Path, options: PeerOptions) -> PeerResult:
    """Fit AutoGluon MultiModal on train/val within the budget; its test probabilities."""
    print(f"bench peer autogluon: {splits.spec.name} ({splits.data_size} px), budget "
          f"{options.budget_s} s, run folder {run_dir}")  # fmt: skip
    backbone = options.backbone or DEFAULT_BACKBONE
    img_size = options.img_size or splits.data_size
    pretrained = options.pretrained
    hp = {"model.timm_image.image_size": img_size, **(options.hyperparameters or {})}
    out = run_autogluon(
        splits, run_dir, python=options.python, budget_s=options.budget_s,
        started=options.started, seed=options.seed, backbone=backbone, preset=DEFAULT_PRESET,
        pretrained=pretrained, hyperparameters=hp,
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
