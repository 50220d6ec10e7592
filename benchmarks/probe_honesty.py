"""Probe honesty (issue 29, acceptance 2): the speed figure a run's probe gives a 2D family
at 28 px and a batch size, beside the steady-state training speed ``benchmarks/throughput.py``
measures for it at that batch, and their ratio (each to be within [0.75, 1.33]).

The probe is :func:`bench.search.speed.measure_throughput`, the function ``bench run`` calls
(first-trial choice, every trial, every final fit). The steady state is ``throughput.py``'s
own measurement (:class:`throughput.Bench` and :func:`throughput.measure`, no reference
pipeline): ``ours``, the fit loop's epoch code on the split, and ``raw``, the training step
alone on one batch in memory, each the median of ``--repeats`` passes after a warm-up. The
probe runs once before and once after them (each as a run would, on a fresh model) and
``probe`` is their mean, so a machine whose speed drifts during the minutes of a family's
measurement does not pass for a probe error; both are printed. One row per family:

    FAMILY batch=B probe=N ours=N raw=N probe/ours=R probe/raw=R ok|MISS

    python benchmarks/probe_honesty.py [--families small_cnn,hybrid,resnet18,resnet50]
        [--batch 128] [--repeats 3] [--device auto]

Exits 1 when a ratio falls outside [0.75, 1.33].
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402

from bench.device import resolve_device  # noqa: E402
from bench.models.registry import create_model  # noqa: E402
from bench.search.speed import measure_throughput  # noqa: E402

FAMILIES = ("small_cnn", "hybrid", "resnet18", "resnet50")
LOW, HIGH = 0.75, 1.33


def probe_figure(family: str, spec, *, batch: int, device) -> float:
    """The run's probe of ``family`` (builder defaults, seed 0) at ``batch``: images/s."""
    torch.manual_seed(0)
    model = create_model(family, num_classes=spec.n_outputs, in_chans=spec.n_channels,
                         img_size=throughput.SIZE)  # fmt: skip
    probe = measure_throughput(model, in_chans=spec.n_channels, img_size=throughput.SIZE,
                               device=device, batch=batch)  # fmt: skip
    assert probe.measured
    return probe.images_s


def steady_figures(family: str, data, flag, *, batch: int, repeats: int, data_dir: Path,
                   device) -> dict[str, float]:  # fmt: skip
    """``throughput.py``'s raw and ours for ``family`` at ``batch`` (its line's steps)."""
    line = next((ln for ln in throughput.LINES if ln.label == family), None)
    line = throughput.Line(family, family, steps=line.steps if line else 4, batch=batch)
    bench = throughput.Bench(line, data, flag, data_dir, steps=line.steps, device=device,
                             reference=False)  # fmt: skip
    return throughput.measure(bench, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    data, flag = throughput.load_data(args.data_dir, 2)
    print(f"# data: {flag or 'synthetic'} 28 px, device {device}, "
          f"threads {torch.get_num_threads()}, batch {args.batch}", flush=True)  # fmt: skip
    ok = True
    for family in [f.strip() for f in args.families.split(",") if f.strip()]:
        t0 = time.perf_counter()
        before = probe_figure(family, data.spec, batch=args.batch, device=device)
        probe_s = time.perf_counter() - t0
        m = steady_figures(family, data, flag, batch=args.batch, repeats=args.repeats,
                           data_dir=args.data_dir, device=device)  # fmt: skip
        after = probe_figure(family, data.spec, batch=args.batch, device=device)
        probe = (before + after) / 2  # a machine whose speed drifts meets both sides alike
        print(f"# {family} probes: before={before:.1f} after={after:.1f}", file=sys.stderr)
        r_ours, r_raw = probe / m["ours"], probe / m["raw"]
        row_ok = all(LOW <= r <= HIGH for r in (r_ours, r_raw))
        ok &= row_ok
        print(f"{family} batch={args.batch} probe={probe:.1f} ours={m['ours']:.1f} "
              f"raw={m['raw']:.1f} probe/ours={r_ours:.2f} probe/raw={r_raw:.2f} "
              f"probe_s={probe_s:.2f} {'ok' if row_ok else 'MISS'}", flush=True)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
