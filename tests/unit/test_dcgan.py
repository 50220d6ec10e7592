"""DCGAN policy: train split only, disk cache (hit on second use, resume after a deadline),
labelled samples mixed in at the ratio, networks for any channel count at 28 and 64 px."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.augment.dcgan import GanSettings, cache_path  # noqa: E402
from bench.augment.registry import build_augmentation  # noqa: E402
from bench.data.load import load_splits  # noqa: E402
from bench.data.splits import Split, images_to_tensor, labels_to_tensor  # noqa: E402
from bench.errors import BenchError  # noqa: E402

TINY = {"dcgan_steps": 4, "dcgan_width": 8}


class Expired:
    """A deadline with no time left (the trainer's Deadline interface)."""

    def remaining(self) -> float:
        return 0.0

    def expired(self) -> bool:
        return True


def build(tv, tmp_path, **kw):
    return build_augmentation(
        "dcgan", data=tv, img_size=tv.data_size, seed=0, device="cpu", cache_dir=tmp_path,
        **{**TINY, **kw},
    )  # fmt: skip


def test_cache_miss_then_hit(tiny_npz, tmp_path, capsys):
    tv = load_splits(tiny_npz()).train_val()
    first = build(tv, tmp_path)
    assert first.info["cache"] == "miss" and first.info["dcgan_steps_done"] == 4
    assert first.info["dcgan_train_s"] > 0
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob(".*tmp"))
    capsys.readouterr()
    second = build(tv, tmp_path)
    assert "reused cached generator" in capsys.readouterr().err
    assert second.info["cache"] == "hit" and second.info["dcgan_train_s"] == 0
    assert second.info["dcgan_total_train_s"] == first.info["dcgan_total_train_s"]
    g1, g2 = first.prepared.generator, second.prepared.generator
    for (k, a), (_, b) in zip(g1.state_dict().items(), g2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    # another seed or other settings are another generator
    third = build_augmentation("dcgan", data=tv, img_size=28, seed=1, device="cpu",
                               cache_dir=tmp_path, **TINY)  # fmt: skip
    assert third.info["cache"] == "miss" and len(list(tmp_path.glob("*.pt"))) == 2


def test_key_ignores_val_but_not_train(tiny_npz):
    tv = load_splits(tiny_npz()).train_val()
    s = GanSettings()
    base = cache_path(tv, seed=0, settings=s, cache_dir="c")
    other_val = dataclasses.replace(tv, val=Split(tv.val.images[:3], tv.val.labels[:3]))
    assert cache_path(other_val, seed=0, settings=s, cache_dir="c") == base
    img = tv.train.images.copy()
    img[0] ^= 1
    other_train = dataclasses.replace(tv, train=Split(img, tv.train.labels))
    assert cache_path(other_train, seed=0, settings=s, cache_dir="c") != base
    assert cache_path(tv, seed=0, settings=GanSettings(steps=7), cache_dir="c") != base


def test_deadline_caps_training_and_cache_resumes(tiny_npz, tmp_path):
    tv = load_splits(tiny_npz()).train_val()
    cut = build_augmentation("dcgan", data=tv, img_size=28, seed=0, device="cpu",
                             cache_dir=tmp_path, deadline=Expired(), **TINY)  # fmt: skip
    assert cut.info["dcgan_steps_done"] == 0 and cut.info["cache"] == "miss"
    resumed = build(tv, tmp_path)
    assert resumed.info["cache"] == "resumed" and resumed.info["dcgan_steps_done"] == 4


def test_env_cache_dir(tiny_npz, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "envcache"))
    tv = load_splits(tiny_npz()).train_val()
    aug = build_augmentation("dcgan", data=tv, img_size=28, seed=0, device="cpu", **TINY)
    assert aug.info["cache_path"].startswith(str(tmp_path / "envcache" / "dcgan"))


@pytest.mark.parametrize("ratio,expect", [(0.25, 4), (0.5, 8), (0.0, 0)])
def test_ratio_and_labels(tiny_npz, tmp_path, ratio, expect):
    tv = load_splits(tiny_npz(task="multi-class")).train_val()
    aug = build(tv, tmp_path, dcgan_ratio=ratio)
    x = images_to_tensor(tv.train.images[:16], n_channels=1)
    y = labels_to_tensor(tv.train.labels[:16], multilabel=False)
    out, out_y = aug(x, y, torch.Generator().manual_seed(0))
    changed = (out != x).flatten(1).any(1)
    assert int(changed.sum()) == expect
    assert set(out_y.tolist()) <= set(range(tv.spec.n_classes))
    assert torch.equal(out_y[~changed], y[~changed])


def test_multilabel_conditions_on_train_rows(tiny_npz, tmp_path):
    tv = load_splits(tiny_npz(task="multi-label, binary-class", n_channels=3)).train_val()
    aug = build(tv, tmp_path, dcgan_ratio=1.0)
    x = images_to_tensor(tv.train.images[:8], n_channels=3)
    y = labels_to_tensor(tv.train.labels[:8], multilabel=True)
    out, out_y = aug(x, y, torch.Generator().manual_seed(3))
    assert out.shape == x.shape and out_y.dtype == torch.float32 and out_y.shape == y.shape
    rows = {tuple(r) for r in tv.train.labels.astype(float).tolist()}
    assert all(tuple(r) in rows for r in out_y.tolist())


def test_condition_changes_samples(tiny_npz, tmp_path):
    tv = load_splits(tiny_npz(task="multi-class")).train_val()
    aug = build(tv, tmp_path)
    a, la = aug.sample(4, torch.Generator().manual_seed(0), "cpu", classes=torch.zeros(4).long())
    b, lb = aug.sample(4, torch.Generator().manual_seed(0), "cpu", classes=torch.ones(4).long())
    assert la.tolist() == [0] * 4 and lb.tolist() == [1] * 4
    assert not torch.equal(a, b)


@pytest.mark.parametrize("chans", [1, 3])
@pytest.mark.parametrize("size", [28, 64, 128, 224])
def test_networks_shapes(chans, size):
    from bench.augment.dcgan_nets import Discriminator, Generator

    g = Generator(z_dim=8, cond_dim=3, chans=chans, size=size, width=4)
    d = Discriminator(cond_dim=3, chans=chans, size=size, width=4)
    with torch.no_grad():
        img = g(torch.randn(2, 8), torch.eye(3)[:2])
    assert img.shape == (2, chans, size, size) and float(img.abs().max()) <= 1.0
    assert d(img, torch.eye(3)[:2]).shape == (2,)
    assert not any("Pool" in type(m).__name__ for net in (g, d) for m in net.modules())


def test_bad_inputs(tiny_npz, tmp_path):
    tv = load_splits(tiny_npz()).train_val()
    with pytest.raises(BenchError, match="dcgan_ratio=1.5 is out of range"):
        build(tv, tmp_path, dcgan_ratio=1.5)
    assert not list(tmp_path.glob("*.pt")), "nothing is trained for a bad ratio"
    odd = dataclasses.replace(tv, data_size=30)
    with pytest.raises(BenchError, match="cannot generate 30 px"):
        build(odd, tmp_path)


def test_the_searched_ratio_range_is_declared_once_in_the_policy():
    """dcgan_ratio's search range is the policy's declaration (the shipped common.yaml does not
    repeat it), within the range a build accepts, and one-line errors name that range."""
    from bench.augment.dcgan import RATIO_RANGE, RATIO_SEARCHED, check_ratio
    from bench.search.spaces import COMMON, default_space_dir, load_space_file, resolve_space

    shipped = load_space_file(default_space_dir() / f"{COMMON}.yaml", family=COMMON)
    assert "augment=dcgan" not in shipped.when
    space = resolve_space(["small_cnn"], augment=["dcgan"], img_size=28)
    ratio = space.common.when["augment=dcgan"]["dcgan_ratio"]
    assert (ratio.type, ratio.low, ratio.high) == ("float", 0.1, 0.5)
    assert (ratio.low, ratio.high) == (RATIO_SEARCHED["low"], RATIO_SEARCHED["high"])
    assert RATIO_RANGE[0] <= ratio.low <= ratio.high <= RATIO_RANGE[1]
    assert check_ratio(1) == 1.0
    with pytest.raises(BenchError) as err:
        check_ratio(-0.1)
    assert str(err.value) == "dcgan_ratio=-0.1 is out of range; give a value in [0, 1]"


def test_preview_png(tiny_npz, tmp_path, capsys):
    from bench.augment.preview import preview
    from bench.cli import main

    name = tiny_npz(task="multi-class")
    out = preview(name, "dcgan", out=tmp_path / "g.png", cache_dir=tmp_path, hp=TINY)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["augment-preview", "--dataset", name, "--augment", "autoaugment_svhn",
                 "--out", str(tmp_path / "a.png")]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == str(tmp_path / "a.png")
    from PIL import Image

    assert Image.open(tmp_path / "a.png").size[0] > 200
    assert main(["augment-preview", "--dataset", name, "--augment", "nope"]) == 2
    assert not list(tmp_path.glob(".*tmp"))
    assert np.asarray(Image.open(tmp_path / "a.png")).std() > 0


def test_preview_of_volumes_shows_three_planes(tiny_npz, tmp_path):
    from PIL import Image

    from bench.augment.preview import preview

    out = preview(tiny_npz(size=28, ndim=3, counts=(16, 4, 4)), "simple", out=tmp_path)
    image = np.asarray(Image.open(out))
    assert out.name.endswith("_3d_simple.png") and image.std() > 0
    assert image.shape[0] > image.shape[1] * 0.5  # six rows: original + augmented per plane


def _old_train_gan(state, real_float, cond, settings):
    """The training loop before the split stayed uint8 on the device: the split as float32
    in [-1, 1], batch indices and noise drawn on the CPU and copied (reference)."""
    import torch.nn.functional as F

    bs = min(settings.batch, real_float.shape[0])
    ones = torch.full((bs,), settings.real_label)
    zeros = torch.zeros(bs)
    state.G.train()
    state.D.train()
    while state.steps_done < settings.steps:
        idx = torch.randint(real_float.shape[0], (bs,), generator=state.rng).to("cpu")
        z = torch.randn(bs, settings.z_dim, generator=state.rng).to("cpu")
        xr, c = real_float[idx], cond[idx]
        fake = state.G(z, c)
        d_loss = F.binary_cross_entropy_with_logits(state.D(xr, c), ones)
        d_loss = d_loss + F.binary_cross_entropy_with_logits(state.D(fake.detach(), c), zeros)
        state.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        state.opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(state.D(fake, c), torch.ones_like(zeros))
        state.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        state.opt_g.step()
        state.steps_done += 1


def test_training_keeps_the_split_uint8_and_the_cpu_results(tiny_npz):
    """The split stays uint8 (a batch is converted when drawn), draws come from a generator
    on the training device, and on the CPU the trained weights equal the old loop's."""
    from bench.augment.dcgan import GanState, conditions, train_gan

    tv = load_splits(tiny_npz(task="multi-class")).train_val()
    settings = GanSettings(steps=3, width=4, z_dim=8, batch=16)
    real, cond = conditions(tv, "cpu")
    assert real.dtype == torch.uint8 and real.shape == (len(tv.train), 1, 28, 28)

    def new_state():
        return GanState.new(settings, chans=1, cond_dim=tv.spec.n_classes, size=28, seed=0,
                            device="cpu")  # fmt: skip

    ours, old = new_state(), new_state()
    assert ours.rng.device == torch.device("cpu")
    train_gan(ours, real, cond, settings, max_s=None)
    _old_train_gan(old, real.float().div_(127.5).sub_(1.0), cond, settings)
    assert ours.steps_done == old.steps_done == 3
    for (k, a), (_, b) in zip(ours.G.state_dict().items(), old.G.state_dict().items(),
                              strict=True):  # fmt: skip
        assert torch.equal(a, b), k
    with torch.no_grad():
        img = ours.G(torch.randn(4, 8), torch.eye(tv.spec.n_classes)[[0, 1, 0, 1]])
    assert img.shape == (4, 1, 28, 28) and float(img.abs().max()) <= 1.0


def test_a_cuda_cache_has_its_own_key(tiny_npz):
    tv = load_splits(tiny_npz()).train_val()
    s = GanSettings()
    cpu = cache_path(tv, seed=0, settings=s, cache_dir="c")
    assert cache_path(tv, seed=0, settings=s, cache_dir="c", device="cpu") == cpu
    assert cache_path(tv, seed=0, settings=s, cache_dir="c", device="cuda:0") != cpu
