"""Every registered 2D model family at the larger sizes: forward + backward at 64 and 224 px
with 1 and 3 channels, and each family's search-space corners at 224 px (28 px: the same
checks in ``tests/unit/test_models.py``); ``bench train`` of a timm model whose hub weights
cannot be had, in a subprocess."""

from __future__ import annotations

import bench_tiny_plugin  # noqa: F401  (test families from the plugin path, covered here too)
import pytest
from model_steps import check_family_step, check_space_corners

from bench.models.registry import get_model_spec, list_models

SIZES = (64, 224)
CHANNELS = (1, 3)
# Test families that are broken on purpose (they exercise failure handling elsewhere).
BROKEN_ON_PURPOSE = {"tiny_boom", "tiny_nan"}
FAMILIES = [  # the 2D families; the 3D ones are in test_models3d_large.py
    n for n in list_models() if n not in BROKEN_ON_PURPOSE and get_model_spec(n).ndim == 2
]
SPACE_FAMILIES = ["hybrid", "resnet18", "resnet50", "small_cnn"]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread."""


@pytest.mark.parametrize("in_chans", CHANNELS)
@pytest.mark.parametrize("img_size", SIZES)
@pytest.mark.parametrize("family", FAMILIES)
def test_forward_backward(family: str, img_size: int, in_chans: int):
    check_family_step(family, img_size=img_size, in_chans=in_chans)


@pytest.mark.parametrize("img_size", [224])
@pytest.mark.parametrize("family", SPACE_FAMILIES)
def test_search_space_corners_build(family: str, img_size: int):
    check_space_corners(family, img_size=img_size)


def test_timm_hub_weights_unavailable_is_one_line_exit_2(run_bench, tiny_npz, tmp_path):
    # Offline with an empty cache: timm cannot get its weights; no network is touched.
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path)}
    done = run_bench(
        "train", "--dataset", tiny_npz(), "--model", "timm:resnet10t", "--pretrained", "hub",
        "--epochs", "1", "--out", tmp_path / "runs", "--device", "cpu", "--quiet", env=env,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: could not get timm's pretrained weights for resnet10t")
    assert not list((tmp_path / "runs").glob("*/record.json"))
