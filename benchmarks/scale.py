"""``bench`` at full size: synthetic stand-ins with TissueMNIST's split sizes and shapes, and a
224 px set past what a laptop should hold twice, measured as a user would meet them.

Sets (MedMNIST layout, stored npz, a ``.json`` sidecar; each class draws a noisy grating of its
own orientation and frequency, so that a model learns something):

- ``tissue``: 165,466 / 23,640 / 47,280 images, 28 px, 1 channel, 8 classes (TissueMNIST);
- ``224``: 30,000 / 4,000 / 8,000 images, 224 px, 1 channel, 8 classes (1.5 GB of train
  images, read through a memory map).

For each set it measures, each in a fresh process:

- ``load``: ``load_splits`` and the train split as the fit loop's tensor: seconds and peak
  memory (VmHWM; RssAnon vs RssFile, i.e. copies vs mapped file pages);
- ``epoch``: per family, the real epoch loop (``train_epoch``) timed on ``--batches`` batches
  and scaled to the whole train split at the family's default batch size;
- ``run``: ``bench run --budget B`` (default 15m): wall / budget, the time to the first
  finished trial, trials, and peak memory sampled every 0.5 s (anonymous and file-backed).

    python benchmarks/scale.py [--sets tissue,224] [--budget 15m] [--work DIR] [--scale 1.0]

``--scale`` shrinks every split (a quick check of the script itself). One table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_CLASSES = 8
FAMILIES = ("small_cnn", "resnet18", "resnet50", "hybrid")


@dataclass(frozen=True)
class SetSpec:
    name: str
    size: int
    counts: tuple[int, int, int]


SETS = {
    "tissue": SetSpec("tissue", 28, (165_466, 23_640, 47_280)),
    "224": SetSpec("224", 224, (30_000, 4_000, 8_000)),
}


def _images(rng, labels: np.ndarray, size: int) -> np.ndarray:
    """Noisy gratings: class k has orientation k*pi/8 and a frequency that grows with k."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    theta = labels.astype(np.float32) * np.pi / N_CLASSES
    freq = 2.0 + labels.astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=len(labels)).astype(np.float32)
    proj = np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy
    wave = np.sin(2 * np.pi * freq[:, None, None] * proj + phase[:, None, None])
    noise = rng.normal(0, 0.8, size=wave.shape).astype(np.float32)
    return np.clip(127.5 + 60 * (wave + noise), 0, 255).astype(np.uint8)


def write_set(spec: SetSpec, folder: Path, scale: float) -> Path:
    """``folder/<name>.npz`` in MedMNIST layout, written split by split in chunks through
    .npy memory maps (never a whole split in memory), then stored (uncompressed) in the zip."""
    path = folder / f"scale_{spec.name}_{spec.size}.npz"
    counts = [max(N_CLASSES * 4, int(n * scale)) for n in spec.counts]
    meta = {"task": "multi-class", "class_names": [f"class{k}" for k in range(N_CLASSES)]}
    if path.is_file() and json.loads(path.with_name(path.name + ".json").read_text()).get(
        "counts"
    ) == counts:
        return path
    rng = np.random.default_rng(0)
    parts = Path(tempfile.mkdtemp(dir=folder))
    for split, n in zip(("train", "val", "test"), counts, strict=True):
        labels = rng.integers(0, N_CLASSES, size=(n, 1)).astype(np.uint8)
        np.save(parts / f"{split}_labels.npy", labels)
        shape = (n, spec.size, spec.size)
        out = np.lib.format.open_memmap(parts / f"{split}_images.npy", mode="w+",
                                        dtype=np.uint8, shape=shape)  # fmt: skip
        step = max(1, (64 << 20) // (spec.size * spec.size * 4))
        for i in range(0, n, step):
            out[i : i + step] = _images(rng, labels[i : i + step, 0], spec.size)
        out.flush()
        del out
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for member in sorted(parts.iterdir()):
            zf.write(member, member.name)
            member.unlink()
    parts.rmdir()
    os.replace(tmp, path)
    path.with_name(path.name + ".json").write_text(json.dumps({**meta, "counts": counts}))
    return path


_LOAD = """
import json, sys, time
t0 = time.monotonic()
from bench.data.load import load_splits
from bench.data.splits import images_to_tensor
splits = load_splits("npz:" + sys.argv[1])
x = images_to_tensor(splits.train.images, n_channels=1, ndim=2)
took = time.monotonic() - t0
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
kb = lambda k: int(status[k].split()[0]) // 1024
print(json.dumps({"load_s": round(took, 1), "hwm_mb": kb("VmHWM"), "anon_mb": kb("RssAnon"),
                  "file_mb": kb("RssFile"), "train_mb": x.numel() >> 20}))
"""

_EPOCH = """
import json, sys, time
import torch
from bench.data.load import load_splits
from bench.data.splits import images_to_tensor, labels_to_tensor
from bench.device import prepare_model, resolve_device
from bench.models.registry import model_for
from bench.runtime import cpu_threads
from bench.search.spaces import default_params, resolve_space
from bench.train import TrainHP, TrainState, make_loss, make_optimizer, train_epoch
path, family, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
device = resolve_device("auto")
cpu_threads(device)
splits = load_splits("npz:" + path)
spec, size = splits.spec, splits.data_size
space = resolve_space([family], img_size=size, ndim=2, dataset=spec.name)
params = default_params(space, family)
kwargs = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(family + ".")}
batch = int(params.get("batch_size", 128))
n = min(len(splits.train), batch * batches)
model = prepare_model(model_for(spec, family, img_size=size, **kwargs), device)
hp = TrainHP(batch_size=batch)
state = TrainState(model=model, optimizer=make_optimizer(model, hp), loss_fn=make_loss(spec.task),
                   x=images_to_tensor(splits.train.images[:n], n_channels=1, ndim=2, device=device),
                   y=labels_to_tensor(splits.train.labels[:n], multilabel=False, device=device),
                   hp=hp, device=device, perm_gen=torch.Generator().manual_seed(0))
train_epoch(state)  # warm-up
t = time.monotonic()
_, seen, _ = train_epoch(state)
took = time.monotonic() - t
print(json.dumps({"family": family, "batch": batch, "images_s": round(seen / took, 1),
                  "epoch_min": round(len(splits.train) / (seen / took) / 60, 1)}))
"""


def _in_process(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=ROOT)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class PeakMemory:
    """Samples a process tree's RssAnon and RssFile (MB) every 0.5 s; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        self.pid, self.anon, self.file, self.total = pid, 0, 0, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        kids = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [self.pid, *map(int, kids.read_text().split())]
        except OSError:
            return [self.pid]

    def _loop(self) -> None:
        while not self._done.wait(0.5):
            anon = file = 0
            for pid in self._tree():
                try:
                    status = Path(f"/proc/{pid}/status").read_text().splitlines()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status if ":" in line)
                anon += int(fields.get("RssAnon", "0 kB").split()[0]) // 1024
                file += int(fields.get("RssFile", "0 kB").split()[0]) // 1024
            self.anon, self.file = max(self.anon, anon), max(self.file, file)
            self.total = max(self.total, anon + file)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def measure_run(path: Path, budget: str, out: Path, extra: list[str]) -> dict:
    """``bench run`` on the set: wall / budget, the first finished trial, peak memory."""
    cmd = [sys.executable, "-m", "bench", "run", "--dataset", f"npz:{path}", "--budget", budget,
           "--out", str(out), "--quiet", *extra]  # fmt: skip
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    peak = PeakMemory(proc.pid)
    stdout, stderr = proc.communicate()
    wall = time.time() - t0
    peak.stop()
    if proc.returncode != 0:
        raise SystemExit(f"bench run failed: {stderr.strip().splitlines()[-1:]}")
    record = json.loads(sorted(out.glob("*/record.json"))[-1].read_text())
    first = None
    import csv

    with open(out / record["run_id"] / "trials.csv") as f:
        done = [r["datetime_complete"] for r in csv.DictReader(f) if r.get("datetime_complete")]
    if done:
        from datetime import datetime

        first = min(datetime.fromisoformat(d).timestamp() for d in done) - t0
    return {
        "wall_s": round(wall), "budget_s": record["budget_s"],
        "wall_over_budget": round(wall / record["budget_s"], 3),
        "first_trial_s": round(first) if first is not None else None,
        "trials": record["n_trials"], "complete": record["n_complete"],
        "family": record["family"], "test_acc": round(record["test_acc_mean"], 3),
        "peak_anon_mb": peak.anon, "peak_file_mb": peak.file, "peak_total_mb": peak.total,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="tissue,224")
    parser.add_argument("--budget", default="15m")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-scale")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every split")
    parser.add_argument("--batches", type=int, default=20, help="timed batches per family")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--no-run", action="store_true", help="skip the bench run")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.sets.split(","):
        spec = SETS[name]
        t = time.monotonic()
        path = write_set(spec, args.work, args.scale)
        print(f"{name}: {path} ({path.stat().st_size >> 20} MB, "
              f"written in {time.monotonic() - t:.0f}s)", flush=True)  # fmt: skip
        res = {"load": _in_process(_LOAD, str(path))}
        print(f"{name} load: {res['load']}", flush=True)
        res["epochs"] = [_in_process(_EPOCH, str(path), fam, str(args.batches))
                         for fam in args.families.split(",")]  # fmt: skip
        for e in res["epochs"]:
            print(f"{name} epoch: {e}", flush=True)
        if not args.no_run:
            out = args.work / f"runs_{name}_{int(time.time())}"
            res["run"] = measure_run(path, args.budget, out, [])
            print(f"{name} run: {res['run']}", flush=True)
        results[name] = res
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
