"""The mistakes of issue 30 that are found only once a command has started its work, in
subprocesses: exit 2, one ``error:`` line, no traceback, and the output folder as it was
(the fast cases are in ``tests/unit/test_mistakes.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from runs import TESTS

PLUGIN = {"PYTHONPATH": str(TESTS)}
HUB_DOWN = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": "{tmp}/hub"}

CASES = {
    # a fit that diverges after its run folder was made: the folder goes again
    "train-diverges": (("train", "--dataset", "{npz}", "--model", "tiny_nan", "--plugins",
                        "bench_tiny_plugin", "--epochs", "2", "--out", "{work}/runs/deep"),
                       PLUGIN, ["diverged"]),
    # the Hub unreachable (HF_ENDPOINT where nothing listens): one line, no minute of retries
    "train-pretrained-hub-offline": (("train", "--dataset", "{npz}", "--model", "timm:resnet18",
                                      "--pretrained", "hub", "--epochs", "1", "--out",
                                      "{work}/runs"), HUB_DOWN,
                                     ["127.0.0.1:9 is unreachable", "--pretrained PATH"]),
}  # fmt: skip


def listing(root: Path) -> list[str]:
    return sorted(str(p) for p in Path(root).rglob("*"))


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_refused_after_starting_is_one_line_and_leaves_nothing(case, tiny_npz, run_bench,
                                                               tmp_path):  # fmt: skip
    argv, env, words = CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    values = {"npz": tiny_npz(), "work": work, "tmp": tmp_path}
    before = listing(work)
    done = run_bench(*(a.format(**values) for a in argv),
                     env={k: v.format(**values) for k, v in env.items()})  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(w in lines[0] for w in words), lines[0]
    assert listing(work) == before
