"""``bench train``: one-line errors (bad input, 2D things on volumes), the MedMNIST v2
protocol, the mean and std over seeds. The runs that train (and a diverging family's one-line
error) are in ``tests/e2e/test_train_cmd_runs.py``."""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.errors import ConfigError
from bench.results.records import mean_std
from bench.run.train_cmd import PROTOCOLS, resolve_hp


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--model", "resnet_18"], ["resnet18"]),
        (["--model", "small_cnn", "--dataset-override", "nosuchmnist"], ["nosuchmnist"]),
        (["--model", "small_cnn", "--protocol", "medmnist-v2", "--param", "lr=0.1"], ["lr"]),
        (["--model", "small_cnn", "--augment", "nosuchpolicy"], ["nosuchpolicy"]),
        (["--model", "small_cnn", "--seeds", "0"], ["--seeds"]),
        (["--model", "small_cnn", "--img-size", "30"], ["--img-size"]),
    ],
)
def test_bad_input_is_one_line_exit_2(tiny_npz, tmp_path, capsys, argv, words):
    dataset = tiny_npz()
    if "--dataset-override" in argv:
        i = argv.index("--dataset-override")
        dataset = argv[i + 1]
        argv = argv[:i] + argv[i + 2 :]
    rc = main(["train", "--dataset", dataset, "--out", str(tmp_path), "--epochs", "1", *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error:") and "\n" not in err
    assert all(w in err for w in words), err
    assert not list(tmp_path.glob("*/record.json"))


def test_protocol_is_the_papers_recipe():
    hp, rest = resolve_hp({"dropout": 0.1}, protocol="medmnist-v2", epochs=None)
    assert rest == {"dropout": 0.1}
    assert (hp.optimizer, hp.lr, hp.batch_size, hp.epochs) == ("adam", 1e-3, 128, 100)
    assert (hp.schedule, hp.milestones, hp.gamma) == ("step", (0.5, 0.75), 0.1)
    assert (hp.mean, hp.std, hp.metric, hp.weight_decay, hp.early_stop) == (
        0.5,
        0.5,
        "auc",
        0.0,
        None,
    )
    with pytest.raises(ConfigError, match="drop --epochs"):
        resolve_hp({}, protocol="medmnist-v2", epochs=3)
    with pytest.raises(ConfigError, match="batch_size"):
        resolve_hp({"batch_size": 64}, protocol="medmnist-v2", epochs=None)
    assert PROTOCOLS["medmnist-v2"]["epochs"] == 100
    hp, rest = resolve_hp({"lr": 0.1, "depth": 2}, protocol=None, epochs=7)
    assert (hp.lr, hp.epochs, rest) == (0.1, 7, {"depth": 2})


def test_mean_std_over_seeds():
    assert mean_std([0.5]) == (0.5, 0.0)
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--model", "small_cnn"], "small_cnn takes 2D inputs but"),
        (["--model", "small_cnn3d", "--augment", "autoaugment_cifar10"], "works on 2D data only"),
    ],
)
def test_2d_things_on_volumes_are_one_line(tiny_npz, run_bench, tmp_path, extra, needle):
    dataset = tiny_npz(size=28, ndim=3, counts=(8, 4, 4))
    r = run_bench("train", "--dataset", dataset, *extra, "--out", tmp_path / "out")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert not (tmp_path / "out").exists()
