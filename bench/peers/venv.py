"""AutoGluon's own venv: where it is, and building it on first use.

autogluon.multimodal 1.6.3 pins torch<2.14, torchvision<0.29 and timm<1.0.7, so it cannot
share bench's environment. It gets a venv of its own (default
``~/.cache/bench/autogluon-venv``; ``--python`` or ``$BENCH_AUTOGLUON_PYTHON`` name an
existing interpreter instead). ``python -m bench.peers.venv [DIR]`` builds it and prints the
interpreter's path (``.ci/autogluon_venv.sh`` calls this).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.errors import BenchError

PYTHON_ENV = "BENCH_AUTOGLUON_PYTHON"
DEFAULT_VENV = Path("~/.cache/bench/autogluon-venv")
AUTOGLUON_VERSION = "1.6.3"
# ``===`` pins torch exactly: ``==`` may pick a local ``+cpu`` wheel that breaks torchvision.
REQUIREMENTS = (
    "torch===2.13.0",
    "torchvision==0.28.0",
    f"autogluon.multimodal=={AUTOGLUON_VERSION}",
)
READY_MARK = ".bench-ready"


def venv_python(venv: Path) -> Path:
    """The interpreter inside ``venv``."""
    return venv / "bin" / "python"


def is_ready(venv: Path) -> bool:
    """True when ``venv`` was built completely (the mark is written last)."""
    return (venv / READY_MARK).is_file() and venv_python(venv).is_file()


def build_venv(venv: Path, *, base_python: str | None = None, log=print) -> Path:
    """Create ``venv`` and install AutoGluon MultiModal into it; idempotent.

    Args:
        venv: folder of the venv.
        base_python: interpreter that creates the venv (default: this one).
        log: where progress lines go.

    Returns:
        The venv's interpreter.

    Raises:
        BenchError: the venv or the install failed (one line, with the fix).
    """
    venv = Path(venv).expanduser().resolve()
    python = venv_python(venv)
    if is_ready(venv):
        return python
    fix = (
        f"build it by hand (python3 -m venv {venv} && {python} -m pip install "
        f"{' '.join(repr(r) for r in REQUIREMENTS)}) or pass --python PATH"
    )
    steps = [
        [base_python or sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
    ]
    log(f"building AutoGluon's venv in {venv} (once; about 6 GB, a few minutes)")
    for cmd in steps:
        log("$ " + " ".join(cmd))
        try:
            proc = subprocess.run(cmd, check=False, stdout=sys.stderr)  # stdout: the path only
        except OSError as exc:
            raise BenchError(f"could not create AutoGluon's venv ({exc}); {fix}") from None
        if proc.returncode != 0:
            raise BenchError(
                f"could not create AutoGluon's venv: `{' '.join(cmd[:4])} ...` exited with "
                f"{proc.returncode}; {fix}"
            )
    (venv / READY_MARK).write_text(f"autogluon.multimodal=={AUTOGLUON_VERSION}\n")
    return python


def resolve_python(flag: str | None, *, create: bool = True, log=print) -> tuple[Path, bool]:
    """AutoGluon's interpreter: ``--python``, else ``$BENCH_AUTOGLUON_PYTHON``, else the
    default venv (built on first use when ``create``).

    Returns:
        The interpreter, and whether the venv was built just now.

    Raises:
        BenchError: a given interpreter does not exist, or the venv could not be built.
    """
    given = flag or os.environ.get(PYTHON_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            source = "--python" if flag else f"${PYTHON_ENV}"
            raise BenchError(
                f"{source} {given}: no such interpreter; give the python of a venv with "
                f"autogluon.multimodal=={AUTOGLUON_VERSION} (see .ci/autogluon_venv.sh)"
            )
        return path, False
    venv = DEFAULT_VENV.expanduser()
    if is_ready(venv) or not create:
        return venv_python(venv), False
    return build_venv(venv, log=log), True


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.peers.venv [DIR]``: build the venv, print its interpreter."""
    args = sys.argv[1:] if argv is None else argv
    venv = Path(args[0]) if args else DEFAULT_VENV
    try:
        python = build_venv(venv, log=lambda m: print(m, file=sys.stderr))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(python)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
