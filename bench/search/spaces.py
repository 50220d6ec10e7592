"""Search spaces: load and validate the YAML files (the package's ``bench/search_spaces/``, or
a ``--spaces`` folder); walk them define-by-run.

A family file declares ``family``, ``fixed`` builder constants, ``params`` (names are the
builder's keyword arguments) and ``when`` conditionals; ``common.yaml`` declares the training
and augmentation parameters every family shares. :func:`suggest` turns one Optuna trial into
``(family, model_params, train_params)``. Optuna names are namespaced for family parameters
(``hybrid.depth``) and bare for common ones (``lr``); the family itself is the categorical
``family``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError, ConfigError

COMMON = "common"
FILE_KEYS = ("family", "fixed", "params", "when")
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices")
TYPES = ("int", "float", "categorical")
AUGMENT = "augment"
# Common parameters that are not TrainHP fields; epochs come from the budget, never the space.
NOT_SEARCHED = ("epochs", "metric", "train_fraction")
# The seed reports' small-image recipe (with TrainHP's Adam, lr 1e-3, cosine): batch 32 and
# rotations, shifts and zooms. Both Medical MNIST reports trained this way.
RECIPE = {"batch_size": 32, AUGMENT: "simple"}


@dataclass(frozen=True)
class Param:
    """One searched parameter (Optuna's distribution vocabulary)."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def as_dict(self) -> dict:
        """The declaration, without defaults, as it would be written in YAML."""
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out

    def suggest(self, trial, name: str):
        """Ask ``trial`` for a value under the Optuna name ``name``."""
        if self.type == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> str:
        """``[1e-4, 3e-2] log`` or ``{a, b}``, for listings."""
        if self.type == "categorical":
            return "{" + ", ".join(str(c) for c in self.choices) + "}"
        extra = " log" if self.log else (f" step {self.step}" if self.step is not None else "")
        return f"[{self.low}, {self.high}]{extra}"


@dataclass(frozen=True)
class SpaceFile:
    """One validated YAML file; ``family`` is None for ``common.yaml``."""

    path: str
    family: str | None
    fixed: dict = field(default_factory=dict)
    params: dict[str, Param] = field(default_factory=dict)
    when: dict[str, dict[str, Param]] = field(default_factory=dict)  # "augment=dcgan" -> params

    def as_dict(self) -> dict:
        """The resolved declaration (path left out so the hash does not depend on it)."""
        return {
            "family": self.family,
            "fixed": dict(self.fixed),
            "params": {k: p.as_dict() for k, p in self.params.items()},
            "when": {c: {k: p.as_dict() for k, p in ps.items()} for c, ps in self.when.items()},
        }

    def walk(self, trial, prefix: str) -> dict:
        """Suggest every parameter (and the active conditionals) with names ``prefix + name``."""
        values = {name: p.suggest(trial, prefix + name) for name, p in self.params.items()}
        for cond, params in self.when.items():
            key, _, want = cond.partition("=")
            if str(values.get(key)) == want:
                values.update({name: p.suggest(trial, prefix + name) for name, p in params.items()})
        return values


@dataclass(frozen=True)
class Space:
    """The resolved search space: the selected families and the common parameters."""

    common: SpaceFile
    families: dict[str, SpaceFile]

    def tree(self) -> dict:
        """Everything that defines the space, as plain data."""
        return {
            "family": list(self.families),
            "common": self.common.as_dict(),
            "families": {name: f.as_dict() for name, f in self.families.items()},
        }


def default_space_dir() -> Path:
    """The search spaces shipped in the package (``bench/search_spaces/``, package data): the
    same folder from a wheel, an editable install and a source checkout, whatever the cwd."""
    from importlib import resources

    return Path(str(resources.files("bench").joinpath("search_spaces")))


def check_space_dir(given: str | Path | None) -> Path | None:
    """The ``--spaces`` folder, absolute (None when not given: the package's own).

    Raises:
        ConfigError: one line when ``given`` is not a folder.
    """
    if not given:
        return None
    path = Path(given).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise ConfigError(
            f"--spaces {given}: {what}; pass a folder of search space files (common.yaml and "
            f"<family>.yaml; copy {default_space_dir()} to start)"
        )
    return path.resolve()


def _fail(path: str, where: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {msg}" if where else f"{path}: {msg}")


def _number(path: str, where: str, value, kind: str):
    ok = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise _fail(path, where, f"{value!r} is not {'an int' if kind == 'int' else 'a number'}")
    return value


def parse_param(path: str, where: str, name: str, decl) -> Param:
    """Validate one parameter declaration; errors name the file and the key."""
    if not isinstance(decl, dict):
        raise _fail(path, where, "must be a mapping like {type: float, low: 0.0, high: 1.0}")
    unknown = sorted(set(decl) - set(PARAM_KEYS))
    if unknown:
        raise _fail(path, where, f"unknown key {unknown[0]!r} (allowed: {', '.join(PARAM_KEYS)})")
    kind = decl.get("type")
    if kind not in TYPES:
        raise _fail(path, where, f"type {kind!r} must be one of {', '.join(TYPES)}")
    if kind == "categorical":
        extra = sorted(set(decl) & {"low", "high", "log", "step"})
        if extra:
            raise _fail(path, where, f"categorical takes only choices, not {extra[0]!r}")
        choices = decl.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _fail(path, where, "choices must be a non-empty list")
        for c in choices:
            if c is not None and not isinstance(c, (bool, int, float, str)):
                raise _fail(path, where, f"choice {c!r} must be a number, string, bool or null")
        if len({json.dumps(c) for c in choices}) != len(choices):
            raise _fail(path, where, "choices repeat a value")
        return Param(name, kind, choices=tuple(choices))
    if "choices" in decl:
        raise _fail(path, where, f"{kind} takes low/high, not choices")
    for key in ("low", "high"):
        if key not in decl:
            raise _fail(path, where, f"{kind} needs {key}")
    low = _number(path, f"{where}.low", decl["low"], kind)
    high = _number(path, f"{where}.high", decl["high"], kind)
    if low > high:
        raise _fail(path, where, f"low {low} > high {high}")
    log = decl.get("log", False)
    if not isinstance(log, bool):
        raise _fail(path, f"{where}.log", f"{log!r} must be true or false")
    step = decl.get("step")
    if step is not None:
        step = _number(path, f"{where}.step", step, kind)
        if step <= 0:
            raise _fail(path, f"{where}.step", f"{step} must be > 0")
        if log:
            raise _fail(path, where, "log and step cannot be used together")
    if log and low <= 0:
        raise _fail(path, where, f"log needs low > 0 (got low {low})")
    return Param(name, kind, low=low, high=high, log=log, step=step)


def _parse_params(path: str, where: str, block) -> dict[str, Param]:
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise _fail(path, where, "must be a mapping of name -> declaration")
    return {str(n): parse_param(path, f"{where}.{n}", str(n), d) for n, d in block.items()}


def _parse_when(path: str, block, params: dict[str, Param]) -> dict[str, dict[str, Param]]:
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise _fail(path, "when", "must be a mapping like {augment=dcgan: {...}}")
    out: dict[str, dict[str, Param]] = {}
    for cond, body in block.items():
        key, sep, value = str(cond).partition("=")
        where = f"when.{cond}"
        p = params.get(key.strip())
        if not sep or p is None or p.type != "categorical":
            raise _fail(path, where, "must be NAME=VALUE with NAME a categorical in params")
        if value.strip() not in {str(c) for c in p.choices}:
            raise _fail(path, where, f"{value.strip()!r} is not one of the choices of {key}")
        inner = _parse_params(path, where, body)
        for name in inner:
            if name in params:
                raise _fail(path, f"{where}.{name}", "is already declared in params")
        out[f"{key.strip()}={value.strip()}"] = inner
    return out


def _read_yaml(path: Path):
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None


def load_space_file(path: str | Path, *, family: str | None = None) -> SpaceFile:
    """Read and validate one file; ``common.yaml`` (or ``family=COMMON``) has no family.

    Raises:
        ConfigError: one line naming the file and the key at fault.
    """
    path = Path(path)
    is_common = family == COMMON or (family is None and path.stem == COMMON)
    data = _read_yaml(path)
    p = str(path)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise _fail(p, "", "must be a mapping with keys family, fixed, params, when")
    unknown = sorted(set(map(str, data)) - set(FILE_KEYS))
    if unknown:
        raise _fail(p, "", f"unknown key {unknown[0]!r} (allowed: {', '.join(FILE_KEYS)})")
    params = _parse_params(p, "params", data.get("params"))
    when = _parse_when(p, data.get("when"), params)
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise _fail(p, "fixed", "must be a mapping of builder argument -> value")
    if is_common:
        if "family" in data or fixed:
            key = "family" if "family" in data else "fixed"
            raise _fail(p, key, "common.yaml holds shared training parameters only")
        _check_common(p, params, when)
        return SpaceFile(p, None, {}, params, when)
    name = data.get("family")
    if not isinstance(name, str) or not name:
        raise _fail(p, "family", "missing; it must name a registered model family")
    _check_family(p, name, fixed, params, when)
    return SpaceFile(p, name, dict(fixed), params, when)


def _check_family(path: str, name: str, fixed: dict, params: dict, when: dict) -> None:
    from bench.models.registry import get_model_spec

    try:
        spec = get_model_spec(name)
    except BenchError as exc:
        raise _fail(path, "family", str(exc)) from None
    accepted = spec.accepted_kwargs()
    if accepted is None:
        return
    keys = [("fixed", k) for k in fixed] + [("params", k) for k in params]
    keys += [(f"when.{c}", k) for c, ps in when.items() for k in ps]
    for block, key in keys:
        if key not in accepted:
            took = ", ".join(sorted(accepted)) or "no hyperparameters"
            raise _fail(path, f"{block}.{key}", f"the {name} builder does not accept it ({took})")
    for key in set(fixed) & set(params):
        raise _fail(path, f"fixed.{key}", "is also in params; keep one")


def train_fields() -> set[str]:
    """TrainHP field names."""
    from dataclasses import fields

    from bench.train import TrainHP

    return {f.name for f in fields(TrainHP)}


def _check_common(path: str, params: dict, when: dict) -> None:
    allowed = train_fields()
    for key in params:
        if key in NOT_SEARCHED:
            raise _fail(path, f"params.{key}", "is set from the budget, not searched")
        if key != AUGMENT and key not in allowed:
            raise _fail(path, f"params.{key}", "is not a training hyperparameter (TrainHP)")
    for cond, ps in when.items():
        key, _, value = cond.partition("=")
        accepted = _augment_kwargs_accepted(path, f"when.{cond}", value) if key == AUGMENT else None
        for name in ps:
            if key == AUGMENT:
                if not is_policy_param(name, value):
                    msg = f"augmentation parameters are named {value}_<kwarg>"
                    raise _fail(path, f"when.{cond}.{name}", msg)
                if accepted is not None and name not in accepted:
                    took = ", ".join(sorted(accepted)) or "no parameters"
                    msg = f"the {value} augmentation does not accept it ({took})"
                    raise _fail(path, f"when.{cond}.{name}", msg)
            elif name not in allowed:
                msg = "is not a training hyperparameter (TrainHP)"
                raise _fail(path, f"when.{cond}.{name}", msg)


def _augment_kwargs_accepted(path: str, where: str, name: str) -> set[str] | None:
    """Keyword names augmentation ``name`` accepts (None: any)."""
    from bench.augment.registry import get_augmentation

    try:
        return get_augmentation(name).accepted_kwargs()
    except BenchError as exc:
        raise _fail(path, where, str(exc)) from None


def space_file_path(family: str, space_dir: Path | None = None) -> Path | None:
    """Where family ``family`` keeps its space: its spec's ``search_space`` (a path or
    ``package:resource``) or ``<space_dir>/<family>.yaml``; None if there is none."""
    from bench.models.registry import get_model_spec

    spec = get_model_spec(family)
    if spec.search_space:
        ref = spec.search_space
        pkg, sep, res = ref.partition(":")
        if sep and not Path(ref).exists() and "/" not in pkg:
            from importlib.resources import files

            try:
                return Path(str(files(pkg).joinpath(res)))
            except ModuleNotFoundError:
                msg = f"family {family}: search space package {pkg!r} not found"
                raise ConfigError(msg) from None
        return Path(ref)
    path = (space_dir or default_space_dir()) / f"{family}.yaml"
    return path if path.is_file() else None


def builtin_families(img_size: int, space_dir: Path | None = None, *, ndim: int = 2) -> list[str]:
    """Built-in families with a space file that take ``ndim``-D inputs of ``img_size`` (the
    default choice)."""
    from bench.models.registry import get_model_spec, list_models

    out = []
    for name in list_models():
        spec = get_model_spec(name)
        if spec.source != "built-in" or img_size not in spec.sizes or spec.ndim != ndim:
            continue
        if space_file_path(name, space_dir) is not None:
            out.append(name)
    return out


def _no_default_family(sdir: Path, img_size: int, ndim: int) -> str:
    """Why no family is searched by default: where it looked, and what to pass instead."""
    from bench.models.registry import get_model_spec, list_models

    fits = []
    for name in list_models():
        spec = get_model_spec(name)
        if spec.source == "built-in" and img_size in spec.sizes and spec.ndim == ndim:
            fits.append(name)
    if not fits:
        return (
            f"no built-in model family takes {ndim}D inputs of img_size {img_size}; pass "
            "--img-size with a size the families take (bench models), or --families NAME"
        )
    missing = "" if sdir.is_dir() else " (no such folder)"
    return (
        f"no search space file for {', '.join(fits)} (the families that take img_size "
        f"{img_size}) in {sdir}{missing}; pass --spaces DIR with a folder that holds "
        f"<family>.yaml files (bench spaces shows the shipped ones), or --families {fits[0]} "
        "to search its builder defaults"
    )


def _resolve_augment(
    common: SpaceFile, augment: list[str] | None, ndim: int = 2, dataset: str = "the data"
) -> SpaceFile:
    """``common`` with the ``augment`` choices replaced by ``augment`` (each registered and
    taking ``ndim``-D data; by default the choices of ``common.yaml`` that do), and the
    parameters a policy declares itself (``AugmentSpec.params``) added as its ``when`` block
    where ``common.yaml`` has none."""
    from bench.augment.registry import check_augment_ndim, get_augmentation

    params, when = dict(common.params), dict(common.when)
    if augment:
        for name in augment:
            check_augment_ndim(name, ndim, dataset)
    elif AUGMENT in params:  # the default: the choices that fit the data
        fit = [c for c in params[AUGMENT].choices if ndim in get_augmentation(str(c)).ndims]
        augment = fit if len(fit) < len(params[AUGMENT].choices) else None
    if augment:
        params[AUGMENT] = Param(AUGMENT, "categorical", choices=tuple(augment))
        when = {
            c: ps
            for c, ps in when.items()
            if not c.startswith(AUGMENT + "=") or c.partition("=")[2] in augment
        }
    choices = params[AUGMENT].choices if AUGMENT in params else ()
    for name in choices:
        if name == "none":
            continue
        spec = get_augmentation(str(name))  # one-line error with close matches if unknown
        cond = f"{AUGMENT}={name}"
        if spec.params and cond not in when:
            where = f"augmentation {name}"
            when[cond] = _parse_params(f"{common.path} ({where})", "params", spec.params)
    return SpaceFile(common.path, None, {}, params, when)


def resolve_space(
    families: list[str] | None = None,
    *,
    augment: list[str] | None = None,
    img_size: int = 28,
    space_dir: str | Path | None = None,
    ndim: int = 2,
    dataset: str = "",
) -> Space:
    """Load ``common.yaml`` and the selected families' files into a :class:`Space`.

    Args:
        families: family names (default: every built-in family with a space file that
            takes ``ndim``-D inputs of ``img_size``). A family without a file is searched
            with its builder defaults only.
        augment: restrict the ``augment`` choices to these policies.
        img_size: model input size; every selected family must support it.
        space_dir: folder of the YAML files (default: :func:`default_space_dir`).
        ndim: 2 for images, 3 for volumes: families and policies must take it.
        dataset: named in the messages.

    Raises:
        ConfigError / BenchError: one line on the first problem found.
    """
    from bench.models.registry import check_ndim, get_model_spec

    sdir = Path(space_dir) if space_dir else default_space_dir()
    common_path = sdir / f"{COMMON}.yaml"
    if common_path.is_file():
        common = load_space_file(common_path, family=COMMON)
    else:
        common = SpaceFile(str(common_path), None)
    dataset = dataset or "the data"
    common = _resolve_augment(common, augment, ndim, dataset)
    names = (
        list(dict.fromkeys(families)) if families else builtin_families(img_size, sdir, ndim=ndim)
    )
    if not names:
        raise ConfigError(_no_default_family(sdir, img_size, ndim))
    chosen: dict[str, SpaceFile] = {}
    for name in names:
        spec = get_model_spec(name)  # one-line error for an unknown family
        check_ndim(name, ndim, dataset)
        if img_size not in spec.sizes:
            sizes = ", ".join(map(str, spec.sizes))
            raise ConfigError(f"family {name} does not support img_size {img_size} ({sizes})")
        path = space_file_path(name, sdir)
        if path is None:
            chosen[name] = SpaceFile("", name)
            continue
        sf = load_space_file(path)
        if sf.family != name:
            raise ConfigError(f"{path}: family: {sf.family!r} but the file is for {name!r}")
        chosen[name] = sf
    return Space(common, chosen)


def suggest(trial, space: Space) -> tuple[str, dict, dict]:
    """Walk ``space`` with ``trial`` (a Trial, FixedTrial or ask()-ed trial).

    Returns:
        ``(family, model_params, train_params)``: ``model_params`` are builder kwargs (fixed
        values included); ``train_params`` holds the common parameters (TrainHP fields,
        ``augment`` and the active augmentation parameters) under their bare names.
    """
    family = trial.suggest_categorical("family", list(space.families))
    fam = space.families[family]
    model_params = dict(fam.fixed)
    model_params.update(fam.walk(trial, family_prefix(family)))
    train_params = space.common.walk(trial, "")
    return family, model_params, train_params


def _default_value(p: Param, default):
    """``default`` if ``p`` can take it, else a central value of ``p``."""
    if p.type == "categorical":
        return default if default in p.choices else p.choices[0]
    if default is not None and not isinstance(default, bool):
        if isinstance(default, (int, float)) and p.low <= default <= p.high:
            return int(default) if p.type == "int" else float(default)
    mid = (p.low * p.high) ** 0.5 if p.log else (p.low + p.high) / 2
    if p.type == "int":
        return int(round(mid))
    if p.step is not None:
        return p.low + round((mid - p.low) / p.step) * p.step
    return float(mid)


def default_params(space: Space, family: str, common: dict | None = None) -> dict:
    """Optuna parameters of a sensible first trial: ``family`` with its builder's defaults
    and TrainHP's defaults, ``common`` over them, wherever the space allows them (else a
    central value), the first augmentation choice unless ``common`` names one. Used to seed
    an empty study (``common=RECIPE``: its second trial)."""
    import inspect
    from dataclasses import fields

    from bench.models.registry import get_model_spec

    sig = inspect.signature(get_model_spec(family).build).parameters
    builder = {k: v.default for k, v in sig.items() if v.default is not inspect.Parameter.empty}
    from bench.train import TrainHP

    train = {f.name: f.default for f in fields(TrainHP)} | (common or {})
    out: dict[str, Any] = {"family": family}
    fam = space.families[family]
    for sf, prefix, defaults in ((fam, family_prefix(family), builder), (space.common, "", train)):
        values = {k: _default_value(p, defaults.get(k)) for k, p in sf.params.items()}
        for cond, ps in sf.when.items():
            key, _, want = cond.partition("=")
            if str(values.get(key)) == want:
                values.update({k: _default_value(p, defaults.get(k)) for k, p in ps.items()})
        out.update({prefix + k: v for k, v in values.items()})
    return out


def augment_kwargs(train_params: dict) -> tuple[str, dict]:
    """``(policy, kwargs)`` of the chosen augmentation, e.g. ``("dcgan", {"dcgan_ratio": .3})``."""
    name = str(train_params.get(AUGMENT, "none"))
    return name, policy_params(train_params, name)


def is_policy_param(name: str, policy: str) -> bool:
    """True when ``name`` is a parameter of augmentation ``policy``: the one naming rule,
    ``<policy>_<kwarg>`` (``dcgan_ratio``), in the spaces, ``--param`` and the records."""
    return name.startswith(f"{policy}_")


def policy_params(params: dict, policy: str) -> dict:
    """The entries of ``params`` that belong to augmentation ``policy``
    (:func:`is_policy_param`)."""
    return {k: v for k, v in params.items() if is_policy_param(k, policy)}


def family_prefix(family: str) -> str:
    """``hybrid.``: how Optuna names ``family``'s builder kwargs (``hybrid.depth``)."""
    return f"{family}."


def family_kwargs(params: dict, family: str) -> dict:
    """``family``'s builder kwargs among Optuna ``params``, their :func:`family_prefix`
    stripped (``{"hybrid.depth": 2}`` -> ``{"depth": 2}``)."""
    prefix = family_prefix(family)
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def all_space_files(space_dir: Path) -> list[Path]:
    """``common.yaml`` first, then the other files sorted."""
    files = sorted(space_dir.glob("*.yaml")) + sorted(space_dir.glob("*.yml"))
    return sorted(files, key=lambda f: (f.stem != COMMON, f.name))


def cmd_spaces(args: argparse.Namespace) -> int:
    """``bench spaces [--check] [--spaces DIR]``: validate or print every search space file."""
    sdir = check_space_dir(args.spaces) or default_space_dir()
    if not sdir.is_dir():
        raise ConfigError(f"search space folder {sdir} does not exist; pass --spaces DIR")
    paths = all_space_files(sdir)
    if not paths:
        raise ConfigError(
            f"no search space in {sdir} (no *.yaml file); pass --spaces with a folder that "
            "holds common.yaml and one file per family"
        )
    loaded, errors = [], []
    for path in paths:
        try:
            loaded.append(load_space_file(path))
        except BenchError as exc:
            errors.append(str(exc))
    if args.check:
        import sys

        for err in errors:
            print(f"error: {err}", file=sys.stderr)
        print(f"{len(paths) - len(errors)} of {len(paths)} search space files valid in {sdir}")
        return 2 if errors else 0
    if errors:
        raise ConfigError(errors[0])
    _print_spaces(loaded, args.format, sdir)
    return 0


def _print_spaces(files: list[SpaceFile], fmt: str, sdir: Path) -> None:
    """Every parameter of ``files`` (read from ``sdir``), one row each, as ``bench spaces
    --format`` asks."""
    from bench.terminal import Column, console, fit_table, print_rows

    rows = []
    for sf in files:
        prefix = f"{sf.family}." if sf.family else ""
        fam = sf.family or "(common)"
        entries = [(prefix + key, "fixed", repr(value)) for key, value in sf.fixed.items()]
        entries += [(prefix + key, p.type, p.describe()) for key, p in sf.params.items()]
        entries += [(f"{prefix}{key} (if {cond})", p.type, p.describe())
                    for cond, ps in sf.when.items() for key, p in ps.items()]  # fmt: skip
        rows += [{"file": Path(sf.path).name, "family": fam, "optuna_name": name, "type": kind,
                  "range": described} for name, kind, described in entries]  # fmt: skip
    if fmt != "table":
        print_rows(rows, fmt)
        return
    columns = (Column("file", drop=1), Column("family", drop=2), Column("optuna name", wrap=True),
               Column("type", drop=3), Column("range / choices", wrap=True))  # fmt: skip
    out = console()
    out.print(fit_table(f"search spaces in {sdir}", columns, [tuple(r.values()) for r in rows],
                        width=out.width))  # fmt: skip
