"""Saved fits: the weights (safetensors) and what rebuilds the network exactly (family and
its parameters, channels, sizes, normalisation, task, class names, ``bench`` version, the
weights' sha256), and ``ensemble.json``, the run's answer as weighted members.

A run folder's ``models/`` holds ``{fit}.safetensors`` + ``{fit}.json`` per final fit and
``ensemble.json``; each file is written atomically and ``ensemble.json`` last, so a folder a
kill interrupted has no ensemble file and is refused by :func:`load_ensemble`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError

MODELS_DIR = "models"
ENSEMBLE_FILE = "ensemble.json"
MODEL_FORMAT = 1  # bumped when a saved fit can no longer be read the same way


def fit_name(member: int, seed: int) -> str:
    """``seed1`` for the configuration chosen on val (member 0), ``m2-seed1`` for the other
    members of a selected ensemble."""
    return f"seed{seed}" if member == 0 else f"m{member}-seed{seed}"


def save_fit(run_dir: Path, name: str, model, *, family: str, model_params: dict, spec,
             data_size: int, img_size: int, mean: float, std: float) -> str:  # fmt: skip
    """Write ``models/{name}.safetensors`` and its metadata; return the metadata's path
    relative to ``run_dir``."""
    from safetensors.torch import save

    from bench import __version__
    from bench.files import atomic_write_text, write_json
    from bench.models.registry import get_model_spec

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    blob = save(state)
    folder = Path(run_dir) / MODELS_DIR
    atomic_write_text(folder / f"{name}.safetensors", blob)
    meta = {
        "format": MODEL_FORMAT, "bench_version": __version__, "family": family,
        "family_source": get_model_spec(family).source, "model_params": model_params,
        "dataset": spec.name, "task": spec.task, "class_names": list(spec.class_names),
        "n_channels": spec.n_channels, "ndim": spec.ndim, "data_size": data_size,
        "img_size": img_size, "mean": mean, "std": std,
        "weights": f"{name}.safetensors", "sha256": hashlib.sha256(blob).hexdigest(),
    }  # fmt: skip
    write_json(folder / f"{name}.json", meta)
    return f"{MODELS_DIR}/{name}.json"


def write_ensemble(run_dir: Path, members: list[dict]) -> str:
    """``models/ensemble.json``: ``[{trial, family, weight, fits: [fit names]}]``, written
    after every fit it names; returns its path relative to ``run_dir``."""
    from bench.files import write_json

    write_json(Path(run_dir) / MODELS_DIR / ENSEMBLE_FILE, {"format": MODEL_FORMAT,
                                                          "members": members})  # fmt: skip
    return f"{MODELS_DIR}/{ENSEMBLE_FILE}"


@dataclass
class SavedFit:
    """One reloaded fit: the network (eval mode, on ``device``) and its metadata."""

    name: str
    model: object
    meta: dict

    def spec(self):
        """A DatasetSpec with what prediction needs (task, channels, dims, class names)."""
        return _spec(self.meta)


def _spec(meta: dict):
    from bench.data.spec import DatasetSpec

    return DatasetSpec(name=meta["dataset"], task=meta["task"], n_channels=meta["n_channels"],
                       class_names=tuple(meta["class_names"]), ndim=meta["ndim"])  # fmt: skip


def _read_json(path: Path, fix: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{path} is missing; {fix}") from None
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path} is unreadable ({exc}); {fix}") from None


def _check_format(path: Path, data: dict) -> None:
    if data.get("format") != MODEL_FORMAT:
        from bench import __version__

        saved = data.get("bench_version", "an unknown version")
        raise BenchError(
            f"{path} was saved by bench {saved} in model format {data.get('format')}; this "
            f"bench {__version__} reads format {MODEL_FORMAT}: predict with the bench that "
            "made the run, or run it again"
        )


def _import_family(meta: dict) -> None:
    """Import the plugin module that registered a saved fit's family (entry points load
    themselves)."""
    from bench.registry import import_plugins

    source = str(meta.get("family_source", ""))
    kind, _, module = source.partition(":")
    if kind in ("plugin", "module") and module:
        import_plugins([module])


def read_fit_meta(run_dir: Path, name: str) -> dict:
    """Fit ``name``'s metadata (format checked), without loading its weights."""
    path = Path(run_dir) / MODELS_DIR / f"{name}.json"
    meta = _read_json(path, "run bench run again to save the model")
    _check_format(path, meta)
    return meta


def load_fit(run_dir: Path, name: str, device) -> SavedFit:
    """Rebuild fit ``name`` of a run folder, its weights checked against their sha256.

    Raises:
        BenchError: a missing, corrupt or incompatible file (one line naming it).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    from bench.models.registry import create_model

    folder = Path(run_dir) / MODELS_DIR
    fix = "run bench run again to save the model"
    meta = read_fit_meta(run_dir, name)
    weights = folder / meta["weights"]
    try:
        blob = weights.read_bytes()
    except OSError as exc:
        raise BenchError(f"{weights}: cannot read the weights ({exc.strerror}); {fix}") from None
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise BenchError(f"{weights}: corrupt weights (sha256 differs from {name}.json); {fix}")
    _import_family(meta)
    model = create_model(meta["family"], num_classes=_spec(meta).n_outputs,
                         in_chans=meta["n_channels"], img_size=meta["img_size"],
                         **meta["model_params"])  # fmt: skip
    try:
        model.load_state_dict(load(blob))
    except (SafetensorError, RuntimeError) as exc:
        raise BenchError(f"{weights}: weights do not fit {meta['family']} ({exc}); {fix}") from None
    from bench.device import prepare_model

    model = prepare_model(model, device)
    model.eval()
    return SavedFit(name, model, meta)


def load_ensemble(run_dir: Path) -> dict:
    """``models/ensemble.json`` of a finished run.

    Raises:
        BenchError: the folder has no saved model (not a run folder, an older run, or a
            run killed before its models were written) or one of another format.
    """
    run_dir = Path(run_dir)
    path = run_dir / MODELS_DIR / ENSEMBLE_FILE
    if not path.is_file():
        raise BenchError(
            f"{run_dir} has no saved model ({MODELS_DIR}/{ENSEMBLE_FILE} is missing); give "
            "the folder of a finished bench run or bench train (made by bench 0.1.0 or later)"
        )
    from bench.results.records import RECORD_FILE

    if not (run_dir / RECORD_FILE).is_file():
        raise BenchError(
            f"{run_dir} is not a finished run (no record.json: it was interrupted before its "
            "end); run the same command again"
        )
    data = _read_json(path, "run bench run again to save the model")
    _check_format(path, data)
    return data


def ensemble_scores(member_scores: list[list[np.ndarray]], weights: list[float]) -> np.ndarray:
    """Each member's seed fits averaged, then the members' weighted mean."""
    from bench.search.ensemble import weighted_mean

    return weighted_mean([np.mean(fits, axis=0) for fits in member_scores], weights)


def load_answer(run_dir: Path, device, *, seed: int | None = None,
                ensemble: str = "selected") -> list[tuple[float, list[SavedFit]]]:  # fmt: skip
    """The run's model as ``[(weight, [fits])]``: the selected ensemble (default), the
    chosen configuration's seed fits (``ensemble="seeds"``), or its one fit ``seed``.

    Raises:
        BenchError: no saved model, a missing or corrupt fit, an unknown seed.
    """
    data = load_ensemble(run_dir)
    members = data["members"]
    if seed is not None or ensemble == "seeds":
        chosen = members[0]
        names = list(chosen["fits"])
        if seed is not None:
            if seed not in chosen["seeds"]:
                seeds = ", ".join(map(str, chosen["seeds"]))
                raise BenchError(f"--seed {seed}: {run_dir} has fits for seeds {seeds}")
            names = [fit_name(0, seed)]
        return [(1.0, [load_fit(run_dir, n, device) for n in names])]
    return [(float(m["weight"]), [load_fit(run_dir, n, device) for n in m["fits"]])
            for m in members]  # fmt: skip
