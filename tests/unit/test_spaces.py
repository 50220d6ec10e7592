"""Search spaces: every shipped file validates; each kind of error is one line; suggest."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import bench_tiny_plugin  # noqa: F401  (registers tiny_mlp, tiny_boom, tiny_nan)
import optuna
import pytest

from bench.errors import ConfigError
from bench.models.registry import create_model
from bench.search.spaces import (
    COMMON,
    all_space_files,
    augment_kwargs,
    cmd_spaces,
    default_space_dir,
    load_space_file,
    resolve_space,
    suggest,
)

SPACE_DIR = default_space_dir()
SHIPPED = all_space_files(SPACE_DIR)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_file_validates(path: Path) -> None:
    sf = load_space_file(path)
    if path.stem == "common":
        assert sf.family is None and "lr" in sf.params
    else:
        assert sf.family == path.stem


def _write(tmp_path: Path, text: str, name: str = "tiny_mlp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BAD = [
    ("family: tiny_mlp\nparms: {}\n", "unknown key 'parms'"),
    ("family: tiny_mlp\nparams:\n  hidden: {type: int, low: 9, high: 2}\n", "low 9 > high 2"),
    (
        "family: tiny_mlp\nparams:\n  dropout: {type: float, low: 0.0, high: 0.5, log: true}\n",
        "log needs low > 0",
    ),
    ("family: no_such_family\nparams: {}\n", "unknown model family 'no_such_family'"),
    (
        "family: tiny_mlp\nparams:\n  width: {type: int, low: 1, high: 2}\n",
        "params.width: the tiny_mlp builder does not accept it",
    ),
    ("family: tiny_mlp\nfixed: {depth: 2}\n", "fixed.depth: the tiny_mlp builder does not"),
    ("family: tiny_mlp\nparams:\n  hidden: {type: integer, low: 1, high: 2}\n", "type 'integer'"),
    (
        "family: tiny_mlp\nparams:\n  hidden: {type: int, low: 1, high: 2, scale: 3}\n",
        "unknown key 'scale'",
    ),
    ("family: tiny_mlp\nparams:\n  hidden: {type: categorical, choices: []}\n", "non-empty"),
    ("family: tiny_mlp\nparams:\n  hidden: {type: int, low: 1.5, high: 2}\n", "not an int"),
    (
        "family: tiny_mlp\nparams:\n  hidden: {type: categorical, choices: [8]}\n"
        "when:\n  hidden=9:\n    dropout: {type: float, low: 0, high: 1}\n",
        "'9' is not one of",
    ),
    ("family: tiny_mlp\nparams: [1, 2\n", "not valid YAML"),
]


@pytest.mark.parametrize("text,needle", BAD, ids=[n for _, n in BAD])
def test_invalid_file_is_one_line_naming_file_and_key(tmp_path, text, needle) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_space_file(path)
    msg = str(info.value)
    assert needle in msg
    assert str(path) in msg and "\n" not in msg


def test_common_rejects_searched_epochs_and_unknown_training_keys(tmp_path) -> None:
    path = _write(tmp_path, "params:\n  epochs: {type: int, low: 1, high: 9}\n", "common.yaml")
    with pytest.raises(ConfigError, match="params.epochs: is set from the budget"):
        load_space_file(path)
    path.write_text("params:\n  lrr: {type: float, low: 0.1, high: 1.0}\n")
    with pytest.raises(ConfigError, match=r"params.lrr: is not a training hyperparameter"):
        load_space_file(path)


def test_cmd_spaces_check_exit_codes(tmp_path, capsys) -> None:
    assert cmd_spaces(argparse.Namespace(check=True, spaces=str(SPACE_DIR))) == 0
    good = tmp_path / "good"
    good.mkdir()
    (good / "tiny_mlp.yaml").write_text((bench_tiny_plugin.SPACES / "tiny_mlp.yaml").read_text())
    (good / "tiny_boom.yaml").write_text("family: tiny_boom\nparams:\n  x: {type: int}\n")
    assert cmd_spaces(argparse.Namespace(check=True, spaces=str(good))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "tiny_boom.yaml" in err[0]


def _tiny_space(**kw):
    return resolve_space(["tiny_mlp", "tiny_boom"], img_size=28, **kw)


def test_suggest_namespaces_and_fixed_trial() -> None:
    space = _tiny_space(augment=["none"])
    params = {
        "family": "tiny_mlp",
        "tiny_mlp.hidden": 32,
        "tiny_mlp.dropout": 0.1,
        "optimizer": "sgd",
        "lr": 0.01,
        "weight_decay": 1e-4,
        "batch_size": 64,
        "schedule": "step",
        "augment": "none",
    }
    family, model_params, train_params = suggest(optuna.trial.FixedTrial(params), space)
    assert family == "tiny_mlp"
    assert model_params == {"hidden": 32, "dropout": 0.1}
    assert train_params == {
        "optimizer": "sgd",
        "lr": 0.01,
        "weight_decay": 1e-4,
        "batch_size": 64,
        "schedule": "step",
        "augment": "none",
    }
    model = create_model(family, num_classes=2, in_chans=1, img_size=28, **model_params)
    assert model[1].out_features == 32


def test_suggest_with_ask_covers_families_and_conditionals() -> None:
    space = _tiny_space(augment=["none", "dcgan"])
    assert space.families["tiny_mlp"].family == "tiny_mlp"
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        family, model_params, train_params = suggest(trial, space)
        seen.add(family)
        prefix = family + "."
        assert {k for k in trial.params if "." in k} == {prefix + k for k in model_params}
        assert ("dcgan_ratio" in train_params) == (train_params["augment"] == "dcgan")
        name, kwargs = augment_kwargs(train_params)
        assert name == train_params["augment"]
        assert kwargs == ({"dcgan_ratio": train_params["dcgan_ratio"]} if name == "dcgan" else {})
        study.tell(trial, 0.5)
    assert seen == {"tiny_mlp", "tiny_boom"}


def test_study_name_hash_covers_space_metric_and_input_size() -> None:
    """The study name's hash: same space and objective -> same study (a re-run resumes);
    another space, metric or input size -> another study."""
    from bench.search.study import space_hash, study_name

    def name(space, metric="auc", img_size=28):
        return study_name("breastmnist", 28, space_hash(space, metric=metric, img_size=img_size))

    a = name(_tiny_space(augment=["none"]))
    assert a == name(_tiny_space(augment=["none"]))
    assert re.fullmatch(r"bench\.breastmnist\.28\.[0-9a-f]{8}", a)
    others = {
        name(_tiny_space(augment=["none", "simple"])),
        name(resolve_space(["tiny_mlp"], img_size=28, augment=["none"])),
        name(_tiny_space(augment=["none"]), metric="acc"),
        name(_tiny_space(augment=["none"]), img_size=32),
    }
    assert a not in others and len(others) == 4
    assert study_name("npz:/data/My Set.npz", 28, "ab" * 32) == "bench.npz-My-Set.28.abababab"


def test_resolve_errors_are_one_line() -> None:
    with pytest.raises(Exception, match="unknown model family 'tiny_mpl'; did you mean tiny_mlp"):
        resolve_space(["tiny_mpl"])
    with pytest.raises(ConfigError, match="does not support img_size 64"):
        resolve_space(["tiny_mlp"], img_size=64)
    with pytest.raises(Exception, match="unknown augmentation"):
        resolve_space(["tiny_mlp"], augment=["nonee"])


def test_default_families_are_builtin_with_a_space_file() -> None:
    space = resolve_space(img_size=28)
    assert space.families and not {"tiny_mlp", "tiny_boom", "tiny_nan"} & set(space.families)
    for name in space.families:
        assert (SPACE_DIR / f"{name}.yaml").is_file()


def test_default_params_are_valid_and_use_builder_and_trainer_defaults() -> None:
    from bench.search.spaces import default_params

    space = _tiny_space(augment=["none", "dcgan"])
    params = default_params(space, "tiny_mlp")
    assert params["family"] == "tiny_mlp"
    assert params["tiny_mlp.hidden"] == 16 and params["tiny_mlp.dropout"] == 0.0
    assert params["optimizer"] == "adam" and params["lr"] == 1e-3 and params["augment"] == "none"
    assert params["weight_decay"] == pytest.approx(1e-4)  # 0.0 is outside the log range
    family, model_params, _ = suggest(optuna.trial.FixedTrial(params), space)
    assert (family, model_params) == ("tiny_mlp", {"hidden": 16, "dropout": 0.0})


def test_the_recipe_trial_takes_its_values_where_the_space_allows_them() -> None:
    from bench.search.spaces import RECIPE, default_params

    space = _tiny_space(augment=["none", "simple", "dcgan"])
    params = default_params(space, "tiny_mlp", common=RECIPE)
    assert params["augment"] == "simple" and params["batch_size"] == 32
    assert params["simple_strength"] == pytest.approx(0.5)  # its when-block follows the pick
    assert params["optimizer"] == "adam" and params["lr"] == 1e-3
    suggest(optuna.trial.FixedTrial(params), space)  # a complete, valid trial
    plain = default_params(_tiny_space(augment=["none", "dcgan"]), "tiny_mlp", common=RECIPE)
    assert plain["augment"] == "none"  # a policy the space lacks is not forced on it


def test_default_space_dir_is_package_data_holding_every_builtin_family(
    tmp_path, monkeypatch
) -> None:
    """The default spaces are inside the imported package (so a wheel has them), the same
    from any cwd, with a file for every built-in family."""
    import bench
    from bench.models.registry import get_model_spec, list_models

    monkeypatch.chdir(tmp_path)
    assert default_space_dir() == Path(bench.__file__).resolve().parent / "search_spaces"
    builtin = [n for n in list_models() if get_model_spec(n).source == "built-in"]
    assert len(builtin) >= 10
    for name in [COMMON, *builtin]:
        assert (default_space_dir() / f"{name}.yaml").is_file(), name


def test_no_default_family_names_the_folder_and_the_fix(tmp_path) -> None:
    """A folder with no family file for the size: the error says where it looked, which
    families it wanted and the flags that fix it."""
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError) as err:
        resolve_space(img_size=28, space_dir=tmp_path / "mine")
    msg = str(err.value)
    assert f"in {tmp_path / 'mine'};" in msg and "small_cnn" in msg and "resnet18" in msg
    assert "pass --spaces DIR" in msg and "--families " in msg
    with pytest.raises(ConfigError, match=r"in .*/gone \(no such folder\); pass --spaces"):
        resolve_space(img_size=28, space_dir=tmp_path / "gone")
    with pytest.raises(ConfigError, match="no built-in model family takes 2D inputs of img_si"):
        resolve_space(img_size=29)


def test_a_missing_spaces_folder_is_one_line(tmp_path) -> None:
    from bench.search.spaces import check_space_dir

    assert check_space_dir(None) is None and check_space_dir(str(tmp_path)) == tmp_path
    with pytest.raises(ConfigError, match=r"--spaces /no/such: does not exist; pass a folder"):
        check_space_dir("/no/such")
    (tmp_path / "f.yaml").write_text("")
    with pytest.raises(ConfigError, match="is not a folder"):
        check_space_dir(tmp_path / "f.yaml")
