"""Third-party model families: a real plugin package with a ``bench.models`` entry point,
built and installed by pip, then listed by ``bench models`` and trained by ``bench train``.

Names carry a random token so two test runs sharing one venv never collide.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from bench.results.predict_csv import read_table
from bench.results.predictions import read_predictions

TOKEN = uuid.uuid4().hex[:6]
DIST = f"tinyplug{TOKEN}"  # lowercase letters and digits: no name normalisation involved
PACKAGE = f"tinyplug{TOKEN}_bench"
FAMILY = f"tinyplug{TOKEN}_net"
HIDDEN = 8

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
dependencies = []

[project.entry-points."bench.models"]
{entry} = "{package}.models"

[tool.setuptools]
packages = ["{package}"]

[tool.setuptools.package-data]
{package} = ["*.yaml"]
"""

MODELS_PY = """\
from bench import register_model


@register_model(sizes=(28,), search_space="{package}:{family}.yaml", label="Tiny Plug")
def {family}(*, num_classes, in_chans, img_size, hidden={hidden}):
    from torch import nn

    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_chans * img_size * img_size, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
"""

SPACE_YAML = """\
family: {family}
params:
  hidden: {{type: categorical, choices: [4, 8]}}
"""


def write_package(root: Path, *, dist: str, package: str, entry: str, files: dict[str, str]):
    """A source tree with its own pyproject.toml declaring a ``bench.models`` entry point."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(dist=dist, package=package, entry=entry))
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    for name, text in files.items():
        (root / package / name).write_text(text)
    return root


def pip(*args: str) -> None:
    """Run the venv's pip offline; fail the test with its output on error."""
    cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout}\n{done.stderr}"


OFFLINE = ("--no-deps", "--no-build-isolation", "--no-index")


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """The plugin package, pip-installed into the running venv; uninstalled afterwards."""
    fmt = dict(package=PACKAGE, family=FAMILY, hidden=HIDDEN)
    src = write_package(
        tmp_path_factory.mktemp("plugin") / DIST,
        dist=DIST,
        package=PACKAGE,
        entry="tinyplug",
        files={"models.py": MODELS_PY.format(**fmt), f"{FAMILY}.yaml": SPACE_YAML.format(**fmt)},
    )
    pip("install", *OFFLINE, str(src))
    try:
        yield DIST
    finally:
        pip("uninstall", "--yes", DIST)


def models_json(run_bench, *args: str, env: dict | None = None) -> list[dict]:
    done = run_bench("models", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_installed_plugin_is_listed_with_its_source(installed_plugin, run_bench):
    rows = {r["name"]: r for r in models_json(run_bench) if r["kind"] == "model"}
    assert rows[FAMILY]["source"] == f"entry-point:{installed_plugin}"
    assert rows[FAMILY]["label"] == "Tiny Plug"
    assert rows[FAMILY]["sizes"] == [28]
    # its search space ships inside the package (importlib.resources)
    space = Path(rows[FAMILY]["search_space"])
    assert space.name == f"{FAMILY}.yaml" and space.is_file()
    assert {"small_cnn", "resnet18", "resnet50", "hybrid"} <= set(rows)
    assert rows["resnet18"]["source"] == "built-in"


def test_installed_plugin_trains_with_bench_train(installed_plugin, run_bench, tiny_npz, tmp_path):
    out = tmp_path / "runs"
    done = run_bench(
        "train", "--dataset", tiny_npz(), "--model", FAMILY, "--epochs", "1",
        "--out", out, "--device", "cpu", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = list(out.glob("*/record.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["family"] == FAMILY
    assert record["status"] == "ok"
    # the plugin's network was trained: 784*8+8 + 8*2+2 parameters for 2 classes
    assert record["n_params"] == 28 * 28 * HIDDEN + HIDDEN + HIDDEN * 2 + 2
    assert 0.0 <= record["test_auc_mean"] <= 1.0
    # the saved fit reloads through the entry point and reproduces the run's probabilities
    run_dir, npz = records[0].parent, tiny_npz()[len("npz:") :]
    meta = json.loads((run_dir / "models" / "seed0.json").read_text())
    assert meta["family_source"] == f"entry-point:{installed_plugin}"
    csv_out = tmp_path / "p.csv"
    done = run_bench("predict", run_dir, npz, "--out", csv_out, "--quiet", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    (saved,) = (run_dir / "predictions").glob("*@seed0.csv")
    got = read_table(csv_out).scores
    np.testing.assert_allclose(got, read_predictions(saved), atol=1e-6)


def test_entry_point_plugin_that_fails_to_import_is_reported_and_skipped(tmp_path, run_bench):
    # Installed with --target (not into the shared venv) so other bench processes never see it.
    dist, package = f"tinybroken{TOKEN}", f"tinybroken{TOKEN}_bench"
    src = write_package(
        tmp_path / "src",
        dist=dist,
        package=package,
        entry="tinybroken",
        files={"models.py": "raise ImportError('tinybroken needs libfoo')\n"},
    )
    site = tmp_path / "site"
    pip("install", *OFFLINE, "--target", str(site), str(src))
    done = run_bench("models", "--json", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    assert f"plugin 'tinybroken' ({package}.models) failed to load and was skipped" in done.stderr
    assert "tinybroken needs libfoo" in done.stderr
    names = {r["name"] for r in json.loads(done.stdout)}
    assert {"small_cnn", "resnet18", "resnet50", "hybrid"} <= names


def test_plugins_flag_with_a_missing_module_is_one_line_exit_2(run_bench):
    done = run_bench("models", "--plugins", "no_such_module_xyz")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: plugin module 'no_such_module_xyz' failed to import")


def test_plugins_flag_with_a_module_that_raises_is_one_line_exit_2(run_bench, tmp_path):
    (tmp_path / "raising_plugin.py").write_text("raise ValueError('bad plugin config')\n")
    done = run_bench("models", "--plugins", "raising_plugin", env={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "error: plugin module 'raising_plugin' failed to import: ValueError: bad plugin config"
    ]


def test_plugins_flag_registers_a_module_family(run_bench, tmp_path):
    fmt = dict(package="x", family="flagplug_net", hidden=HIDDEN)
    (tmp_path / "flagplug.py").write_text(
        MODELS_PY.format(**fmt).replace('search_space="x:flagplug_net.yaml", ', "")
    )
    env = {"PYTHONPATH": str(tmp_path)}
    rows = {r["name"]: r for r in models_json(run_bench, "--plugins", "flagplug", env=env)}
    assert rows["flagplug_net"]["source"] == "plugin:flagplug"
