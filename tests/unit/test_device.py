"""The device policy on the CPU: the CUDA policy's rules (memory formats, bf16 autocast,
fp32 evaluation) applied where no GPU is needed, so the CPU suite checks what a GPU run does;
the CPU policy leaves the CPU path as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.device import CPU_POLICY, CUDA_POLICY, policy_for
from bench.models.registry import create_model, get_model_spec, list_models
from bench.train import predict_tensor, to_input

CPU = torch.device("cpu")
FAMILIES_3D = [n for n in list_models() if get_model_spec(n).ndim == 3]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread."""


def test_policy_for_each_device() -> None:
    assert policy_for(torch.device("cuda")) is CUDA_POLICY
    assert policy_for(CPU) is CPU_POLICY
    assert (CUDA_POLICY.autocast_dtype, CPU_POLICY.autocast_dtype) == ("bfloat16", None)
    assert (CUDA_POLICY.check_every, CPU_POLICY.check_every) == (25, 1)


def _volumes(n: int = 2, size: int = 28):
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, size, size, size), dtype=torch.uint8, generator=gen)


@pytest.mark.parametrize("family", FAMILIES_3D)
def test_the_cuda_memory_format_rule_runs_every_3d_family(family: str) -> None:
    """channels_last_3d on a model whose 4D/5D weights are all 5D; an ACS model (2D weights
    on volumes) is left as built, where the conversion used to raise ``required rank 5
    tensor to use channels_last_3d format``."""
    model = CUDA_POLICY.prepare_model(create_model(family, num_classes=3, in_chans=1,
                                                   img_size=28), CPU)  # fmt: skip
    weights = [p for p in model.parameters() if p.dim() in (4, 5)]
    if family.endswith("_acs"):
        assert all(p.is_contiguous() for p in weights)
    else:
        assert all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in weights)
    xb = to_input(_volumes(), mean=0.5, std=0.5, policy=CUDA_POLICY)
    assert xb.is_contiguous(memory_format=torch.channels_last_3d)
    model.eval()
    with torch.no_grad():
        out = model(xb)
    assert out.shape == (2, 3) and torch.isfinite(out).all()


@pytest.mark.parametrize("family", ["small_cnn3d", "resnet18_acs"])
def test_the_cpu_policy_leaves_volume_models_and_batches_contiguous(family: str) -> None:
    model = CPU_POLICY.prepare_model(create_model(family, num_classes=3, in_chans=1,
                                                  img_size=28), CPU)  # fmt: skip
    assert all(p.is_contiguous() for p in model.parameters())
    assert CPU_POLICY.model_format(model) is None
    xb = to_input(_volumes().permute(0, 1, 3, 4, 2), mean=0.5, std=0.5, device=CPU)
    assert xb.is_contiguous()


@pytest.mark.parametrize("policy", [CPU_POLICY, CUDA_POLICY], ids=["cpu", "cuda"])
def test_images_are_channels_last_under_both_policies(policy) -> None:
    model = policy.prepare_model(torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3)), CPU)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    xb = to_input(torch.zeros(4, 1, 28, 28, dtype=torch.uint8), mean=0.5, std=0.5, policy=policy)
    assert xb.is_contiguous(memory_format=torch.channels_last)


def test_the_cuda_policy_autocasts_training_to_bf16_on_the_cpu_too() -> None:
    with CUDA_POLICY.autocast(CPU):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert torch.nn.Linear(4, 2)(torch.ones(1, 4)).dtype == torch.bfloat16
    with CPU_POLICY.autocast(CPU):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("task", ["multi-class", "multi-label, binary-class"])
def test_evaluation_under_the_cuda_policy_is_fp32(task: str) -> None:
    """The scores of a CNN under the CUDA policy (bf16 autocast in training) equal plain fp32
    scores to 1e-6 (under bf16 autocast they differ by ~1e-4)."""
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=4, in_chans=1, img_size=28)
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8, generator=gen)
    fp32 = predict_tensor(model, x, task=task, device=CPU, policy=CPU_POLICY)
    cuda = predict_tensor(model, x, task=task, device=CPU, policy=CUDA_POLICY)
    assert fp32.dtype == cuda.dtype == np.float64 and fp32.shape == (32, 4)
    np.testing.assert_allclose(cuda, fp32, rtol=0, atol=1e-6)
