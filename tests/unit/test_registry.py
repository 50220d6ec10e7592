"""The model registry: decorator registration, duplicates, wildcard lists, close matches,
and entry-point plugins (a real dist-info folder on sys.path, no pip)."""

from __future__ import annotations

import sys

import pytest

from bench import create_model, list_models, register_model
from bench.errors import BenchError
from bench.models.registry import get_model_spec


def _tiny(*, num_classes: int, in_chans: int, img_size: int, hidden: int = 4):
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * img_size * img_size, num_classes))


def _named(fn, name: str, module: str):
    """A copy of builder ``fn`` that looks as if it were defined as ``module.name``."""

    def build(*, num_classes: int, in_chans: int, img_size: int, hidden: int = 4):
        return fn(num_classes=num_classes, in_chans=in_chans, img_size=img_size, hidden=hidden)

    build.__name__ = build.__qualname__ = name
    build.__module__ = module
    return build


def test_decorator_registers_under_the_function_name(model_registry):
    @register_model(sizes=(28, 64), label="Reg Net")
    def regtest_net(*, num_classes: int, in_chans: int, img_size: int, hidden: int = 4):
        return _tiny(num_classes=num_classes, in_chans=in_chans, img_size=img_size)

    spec = get_model_spec("regtest_net")
    assert spec.name == "regtest_net"
    assert spec.label == "Reg Net"
    assert spec.sizes == (28, 64)
    assert spec.source == f"module:{__name__}"
    assert spec.accepted_kwargs() == {"hidden"}
    model = create_model("regtest_net", num_classes=3, in_chans=1, img_size=28, hidden=None)
    assert model[1].out_features == 3 and model[1].in_features == 28 * 28


def test_registration_does_not_leak_between_tests():
    assert "regtest_net" not in list_models()


def test_explicit_name_and_default_label(model_registry):
    register_model("regtest_other")(_named(_tiny, "whatever", __name__))
    spec = get_model_spec("regtest_other")
    assert spec.label == "regtest_other"
    assert spec.sizes == (28, 64, 128, 224)


def test_duplicate_name_is_an_error_naming_both_modules(model_registry):
    register_model()(_named(_tiny, "regtest_dup", "first_plugin.models"))
    with pytest.raises(BenchError) as exc:
        register_model()(_named(_tiny, "regtest_dup", "second_plugin.models"))
    msg = str(exc.value)
    assert "'regtest_dup' is registered twice" in msg
    assert "first_plugin.models" in msg and "second_plugin.models" in msg
    assert "\n" not in msg
    # the first registration stays
    assert get_model_spec("regtest_dup").source == "module:first_plugin.models"


def test_duplicate_of_a_builtin_names_its_module(model_registry):
    with pytest.raises(BenchError, match=r"by bench\.models\.resnet and by my_plugin"):
        register_model()(_named(_tiny, "resnet18", "my_plugin"))
    assert get_model_spec("resnet18").label == "ResNet-18"


def test_names_must_be_lowercase(model_registry):
    with pytest.raises(BenchError, match="must be lowercase"):
        register_model("RegTest")(_tiny)
    assert "RegTest" not in list_models("*")


def test_wildcard_listing():
    assert list_models("resnet??") == ["resnet18", "resnet50"]
    assert list_models("resnet18_*") == ["resnet18_2_5d", "resnet18_3d", "resnet18_acs"]
    assert list_models("*cnn") == ["small_cnn"]
    assert list_models("resnet?0") == ["resnet50"]
    assert list_models("no_such_*") == []
    everything = list_models()
    assert everything == sorted(everything)
    assert {"small_cnn", "resnet18", "resnet50", "hybrid"} <= set(everything)


def test_unknown_name_gets_close_matches_in_one_line():
    with pytest.raises(BenchError) as exc:
        get_model_spec("resnet_18")
    msg = str(exc.value)
    assert msg.startswith("unknown model family 'resnet_18'; did you mean resnet18")
    assert "bench models" in msg and "\n" not in msg
    with pytest.raises(BenchError, match="did you mean small_cnn"):
        create_model("smal_cnn", num_classes=2, in_chans=1, img_size=28)


def test_unknown_name_without_close_match_has_no_guess():
    with pytest.raises(BenchError) as exc:
        get_model_spec("qqqqqqqq")
    assert "did you mean" not in str(exc.value)


def test_unknown_hyperparameter_lists_the_accepted_ones():
    with pytest.raises(BenchError) as exc:
        create_model("hybrid", num_classes=2, in_chans=1, img_size=28, widht=3)
    msg = str(exc.value)
    assert "does not accept widht" in msg
    assert "conv_blocks, depth, dropout, embed_dim, heads, mlp_ratio" in msg


# --- entry points: a dist-info folder on sys.path is a real installed distribution ----------


def _fake_distribution(root, *, dist: str, entries: dict[str, str], modules: dict[str, str]):
    """Write ``dist``'s metadata with ``bench.models`` entry points, and its modules."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[bench.models]\n{lines}")
    for name, text in modules.items():
        (root / f"{name}.py").write_text(text)


GOOD_PLUGIN = """
from bench import register_model

@register_model(sizes=(28,), label="EP Net")
def regtest_ep_net(*, num_classes, in_chans, img_size):
    from torch import nn
    return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * img_size * img_size, num_classes))
"""


def test_entry_point_plugins_load_and_a_broken_one_is_skipped(
    model_registry, tmp_path, monkeypatch, capsys
):
    _fake_distribution(
        tmp_path,
        dist="regtest_dist",
        entries={"good": "regtest_ep_good", "broken": "regtest_ep_broken"},
        modules={
            "regtest_ep_good": GOOD_PLUGIN,
            "regtest_ep_broken": "raise ImportError('needs a library that is not installed')",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model_registry.load_plugins(again=True)  # read the group again, as a fresh process does
    assert "regtest_ep_net" in list_models()
    spec = get_model_spec("regtest_ep_net")
    assert spec.source == "entry-point:regtest_dist"
    assert spec.label == "EP Net"
    err = capsys.readouterr().err
    assert "plugin 'broken' (regtest_ep_broken) failed to load and was skipped" in err
    assert "needs a library that is not installed" in err
    assert any("'broken'" in e for e in model_registry.plugin_errors)
    sys.modules.pop("regtest_ep_good", None)


# --- the generic Registry: built-in modules imported on first lookup, order, snapshots -------

WIDGET_MODULES = {
    "regtest_wreg": (
        "from bench.registry import Registry\n"
        "WIDGETS = Registry('widget', builtins=('regtest_w_zeta', 'regtest_w_alpha'))\n"
    ),
    "regtest_w_zeta": (
        "from regtest_wreg import WIDGETS\n"
        "WIDGETS.register('zeta', 1, origin=__name__)\n"
        "WIDGETS.register('beta', 2, origin=__name__)\n"
    ),
    "regtest_w_alpha": "from regtest_wreg import WIDGETS\nWIDGETS.register('alpha', 3)\n",
}


def test_builtins_load_on_first_lookup_in_order_and_snapshots_restore(tmp_path, monkeypatch):
    for name, text in WIDGET_MODULES.items():
        (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        from regtest_wreg import WIDGETS

        assert "regtest_w_zeta" not in sys.modules  # nothing imported before a lookup
        assert WIDGETS.names() == ["zeta", "beta", "alpha"]  # registration order
        assert WIDGETS.list() == ["alpha", "beta", "zeta"] and WIDGETS.get("beta") == 2
        saved = WIDGETS.snapshot()
        WIDGETS.register("gamma", 4)
        with pytest.raises(BenchError, match="'zeta' is registered twice: by regtest_w_zeta"):
            WIDGETS.register("zeta", 5, origin="elsewhere")
        WIDGETS.restore(saved)
        assert WIDGETS.names() == ["zeta", "beta", "alpha"] and "gamma" not in WIDGETS
    finally:
        for name in WIDGET_MODULES:
            sys.modules.pop(name, None)
