"""``bench export RUN_DIR --onnx FILE``: the run's ensemble (or one fit) as one ONNX graph
with the preprocessing inside, checked with onnxruntime against PyTorch on the run's test
split before the file is put in place.

The graph takes ``images``: uint8 in the layout of the data files, (N, S, S) grayscale,
(N, S, S, 3) RGB or (N, S, S, S) volumes at the run's data size, and returns
``probabilities`` (N, classes): scaled and normalised, resized to the model's input size,
every fit's softmax (sigmoid for multi-label) weighted as ``bench predict`` weighs them.
The file's ``metadata_props`` (:func:`graph_metadata`) say so: class names, task, input
layout, dtype and size, channels, normalisation, the model's input size.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.errors import BenchError
from bench.files import atomic_path

OPSET = 18
TOLERANCE = 1e-4  # onnxruntime vs PyTorch, max absolute difference in a probability


def build_graph_module(answer, meta: dict):
    """One ``nn.Module``: uint8 data-layout images -> the ensemble's probabilities."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from bench.data.spec import MULTI_LABEL

    weights = []
    total = sum(w for w, _ in answer)
    for w, fits in answer:
        weights += [w / total / len(fits)] * len(fits)

    class Exported(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fits = nn.ModuleList([f.model.float().to("cpu").eval() for _, fs in answer
                                       for f in fs])  # fmt: skip
            self.weights = weights
            self.ndim, self.channels = int(meta["ndim"]), int(meta["n_channels"])
            self.scale = 1.0 / (255.0 * float(meta["std"]))
            self.shift = float(meta["mean"]) / float(meta["std"])
            self.size = int(meta["img_size"])
            self.resize = int(meta["data_size"]) != self.size
            self.multilabel = meta["task"] == MULTI_LABEL

        def forward(self, images):
            x = images.to(torch.float32)
            x = x.unsqueeze(1) if self.channels == 1 else x.permute(0, 3, 1, 2)
            x = x * self.scale - self.shift
            if self.resize:
                x = F.interpolate(x, size=(self.size,) * self.ndim, mode="nearest")
            out = None
            for w, model in zip(self.weights, self.fits, strict=True):
                logits = model(x)
                p = torch.sigmoid(logits) if self.multilabel else logits.softmax(1)
                out = p * w if out is None else out + p * w
            return out

    return Exported()


def input_layout(meta: dict) -> str:
    """The graph input's axes: ``NHW`` (grayscale), ``NHWC`` (RGB) or ``NDHW`` (volumes)."""
    if int(meta["ndim"]) == 3:
        return "NDHW"
    return "NHW" if int(meta["n_channels"]) == 1 else "NHWC"


def graph_metadata(meta: dict, *, n_fits: int) -> dict[str, str]:
    """The ONNX file's ``metadata_props``: what a caller needs to feed the graph and read its
    output, from the saved fit's metadata (the same fields the graph is built from)."""
    from bench import __version__
    from bench.data.folder import RESIZE_FILTER
    from bench.data.spec import MULTI_LABEL

    size, img_size = int(meta["data_size"]), int(meta["img_size"])
    inside = f"{size} to {img_size} (nearest, as in training)" if img_size != size else "none"
    return {
        "class_names": json.dumps(list(meta["class_names"])),
        "task": meta["task"],
        "input_name": "images",
        "input_layout": input_layout(meta),
        "input_dtype": "uint8",
        "input_size": str(size),
        "channels": str(int(meta["n_channels"])),
        "mean": repr(float(meta["mean"])),
        "std": repr(float(meta["std"])),
        "normalisation": "(x / 255 - mean) / std, inside the graph",
        "model_input_size": str(img_size),
        "resize": f"inside the graph: {inside}. Resize other images to {size} first; bench "
        f"predict uses {RESIZE_FILTER}",
        "output": "probabilities (N, classes): "
        + ("sigmoid per label" if meta["task"] == MULTI_LABEL else "softmax"),
        "n_fits": str(n_fits),
        "producer": f"bench {__version__}",
    }


def cmd_export(args: argparse.Namespace) -> int:
    """Handler of ``bench export``."""
    from bench.runtime import check_output_file
    from bench.saved.fits import load_answer

    onnx_path = Path(args.onnx).expanduser()
    check_output_file(onnx_path, "--onnx")
    _need_onnx()
    answer = load_answer(Path(args.run_dir), "cpu", seed=args.seed)
    meta = answer[0][1][0].meta
    images = _test_images(Path(args.run_dir), meta, args.data_dir)
    module = build_graph_module(answer, meta)
    n_fits = sum(len(f) for _, f in answer)
    with atomic_path(onnx_path) as tmp:
        _export(module, images[:2], str(tmp), graph_metadata(meta, n_fits=n_fits))
        diff = _check(Path(args.run_dir), images, str(tmp), seed=args.seed)
    print(f"{onnx_path}: {n_fits} fit{'s' if n_fits > 1 else ''} in one graph; onnxruntime "
          f"matches PyTorch on {len(images)} test images (max |diff| {diff:.1e} <= "
          f"{TOLERANCE:.0e})")  # fmt: skip
    return 0


def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise BenchError(
            "bench export needs onnx and onnxruntime: pip install 'bench[onnx]'"
        ) from None


def _test_images(run_dir: Path, meta: dict, data_dir):
    """The run's test split images (what the export is checked on)."""
    from bench.data.load import load_splits

    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchError(
            f"{run_dir}/config.json is unreadable ({exc}); give a run folder"
        ) from None
    splits = load_splits(config["dataset"], int(config["data_size"]), data_dir)
    return splits.test.images


def _export(module, sample, path: str, props: dict[str, str]) -> None:
    import onnx
    import torch

    x = torch.from_numpy(sample)
    with torch.no_grad():
        torch.onnx.export(module, (x,), path, input_names=["images"],
                          output_names=["probabilities"], opset_version=OPSET,
                          dynamic_axes={"images": {0: "batch"}, "probabilities": {0: "batch"}},
                          dynamo=False)  # fmt: skip
    model = onnx.load(path)
    onnx.helper.set_model_props(model, props)
    onnx.save(model, path)


def _check(run_dir: Path, images, path: str, *, seed: int | None) -> float:
    """Max |onnxruntime - PyTorch| over ``images``, PyTorch being ``bench predict``'s own
    path (the saved fits, preprocessing outside the graph); a BenchError above TOLERANCE."""
    import numpy as np
    import onnxruntime as ort

    from bench.saved.predict import predict_run

    want = predict_run(run_dir, images, device="cpu", seed=seed)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    diff = 0.0
    for i in range(0, len(images), 256):
        got = session.run(["probabilities"], {"images": np.ascontiguousarray(images[i : i + 256])})
        diff = max(diff, float(np.abs(got[0] - want[i : i + 256]).max()))
    if diff > TOLERANCE:
        raise BenchError(f"onnxruntime differs from PyTorch by {diff:.2e} (> {TOLERANCE:.0e}) "
                         "on the test split; the graph was not written")  # fmt: skip
    return diff
