"""What ``benchmarks/gpu_check.sh`` needs and whether it is there (standard library only: it
runs before anything is installed).

- ``benchmarks/gpu_wheels.txt``: distributions that travel as wheels in ``--wheels`` (one
  wheel each, for CPython ``--python-tag`` on x86-64 Linux, at the pinned version if pinned);
- ``benchmarks/gpu_image.txt``: distributions the GPU machine's python3 holds; with
  ``--installed`` each is checked in this interpreter (and CUDA must be available), else they
  are taken as the image's.

Prints one line per missing thing and exits 1 when anything is missing.

    python3 benchmarks/gpu_deps.py --wheels benchmarks/wheels [--installed] [--python-tag cp312]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)"
                   r"-(?P<plat>[^-]+)\.whl$")  # fmt: skip


def norm(name: str) -> str:
    """A distribution name as wheels and metadata compare it (PEP 503, underscores)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def requirements(path: Path) -> list[tuple[str, str, str]]:
    """(name, operator, version) of each line of ``path`` (``name``, ``name==v``, ``name>=v``)."""
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(==|>=)?\s*([^\s]*)$", line)
            if m is None:
                raise SystemExit(f"{path}: cannot read the line {line!r}")
            out.append((m.group(1), m.group(2) or "", m.group(3) or ""))
    return out


def fits(wheel: re.Match, python_tag: str) -> bool:
    """True when a wheel installs on CPython ``python_tag`` on x86-64 Linux."""
    pys, abis, plats = (wheel.group(k).split(".") for k in ("py", "abi", "plat"))
    py_ok = any(p in ("py3", python_tag) for p in pys)
    abi_ok = any(a in ("none", "abi3", python_tag) for a in abis)
    plat_ok = any(p == "any" or (p.endswith("x86_64") and "linux" in p) for p in plats)
    return py_ok and abi_ok and plat_ok


def missing_wheels(wheels: Path, python_tag: str) -> list[str]:
    """One line per gpu_wheels.txt entry with no fitting wheel in ``wheels``."""
    found: dict[str, list[str]] = {}
    for f in sorted(wheels.glob("*.whl")) if wheels.is_dir() else []:
        m = WHEEL.match(f.name)
        if m and fits(m, python_tag):
            found.setdefault(norm(m.group("name")), []).append(m.group("version"))
    out = []
    for name, op, version in requirements(HERE / "gpu_wheels.txt"):
        have = found.get(norm(name), [])
        if not have or (op == "==" and version not in have):
            want = f"{name}{op}{version}"
            out.append(f"missing wheel: {want} ({python_tag}, x86_64 Linux) in {wheels}")
    return out


def _version_tuple(v: str) -> tuple:
    return tuple(int(p) for p in re.findall(r"\d+", v.split("+")[0])[:3])


def missing_installed() -> list[str]:
    """One line per gpu_image.txt entry this interpreter lacks (or holds too old), and CUDA."""
    from importlib import metadata

    out = []
    for name, op, version in requirements(HERE / "gpu_image.txt"):
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            out.append(f"not installed in {sys.executable}: {name}")
            continue
        if op == ">=" and _version_tuple(have) < _version_tuple(version):
            out.append(f"too old in {sys.executable}: {name} {have} (needs >={version})")
    if not out:
        import torch

        if not torch.cuda.is_available():
            out.append(f"torch {torch.__version__} in {sys.executable} sees no CUDA device")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, default=HERE / "wheels")
    parser.add_argument("--python-tag", default="cp312", help="the GPU machine's CPython")
    parser.add_argument("--installed", action="store_true",
                        help="check gpu_image.txt in this interpreter, and CUDA")  # fmt: skip
    args = parser.parse_args(argv)
    problems = missing_wheels(args.wheels, args.python_tag)
    if args.installed:
        problems += missing_installed()
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
