"""Command line: ``bench <command>``. Parsing only; each command's work lives in its module.

Exit status: 0 done, 2 the user's input was wrong (one ``error:`` line on stderr), 1 an
internal fault, 141 the reader of stdout went away (``bench datasets | head -1``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from bench import __version__
from bench.errors import BenchError, first_cause
from bench.run.flags import (
    COMMON_FLAGS,
    DATA_FLAGS,
    RUN_FLAGS,
    SEARCH_FLAGS,
    WORKER_FLAGS,
    add_flags,
)

# command -> "module:function"; modules are imported only when their command runs.
RESUMABLE = {"run", "search"}  # commands whose study a rerun of the same command resumes
HANDLERS = {
    "datasets": "bench.listing:cmd_datasets",
    "models": "bench.listing:cmd_models",
    "evaluate": "bench.scoring:cmd_evaluate",
    "spaces": "bench.search.spaces:cmd_spaces",
    "train": "bench.run.train_cmd:cmd_train",
    "run": "bench.run.command:cmd_run",
    "search": "bench.run.command:cmd_search",
    "leaderboard": "bench.results.leaderboard:cmd_leaderboard",
    "compare": "bench.results.compare:cmd_compare",
    "report": "bench.results.plots:cmd_report",
    "augment-preview": "bench.augment.preview:cmd_preview",
    "peer": "bench.peers.command:cmd_peer",
    "predict": "bench.saved.predict:cmd_predict",
    "export": "bench.saved.export:cmd_export",
}


EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell shows for a writer killed by a closed pipe
VALUE_FLAGS = ("--budget",)  # values that may start with "-" (a bad budget like -5m)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error:`` line (exit 2), like every other error."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _attach_values(argv: list[str]) -> list[str]:
    """``--budget -5m`` -> ``--budget=-5m``, so the budget parser, not argparse, reports it."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        prev = argv[i - 1] if i else ""
        if prev in VALUE_FLAGS and arg.startswith("-") and out and out[-1] == prev:
            out[-1] = f"{prev}={arg}"
            continue
        out.append(arg)
    return out


def _data_args(p: argparse.ArgumentParser) -> None:
    add_flags(p, DATA_FLAGS)


def _common_args(p: argparse.ArgumentParser) -> None:
    add_flags(p, COMMON_FLAGS)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="bench",
        description="AutoML benchmark harness for medical image classification.",
    )
    parser.add_argument("--version", action="version", version=f"bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    _datasets_parser(sub)
    _models_parser(sub)
    _evaluate_parser(sub)
    _spaces_parser(sub)
    _train_parser(sub)
    _run_parser(sub)
    _search_parser(sub)
    _leaderboard_parser(sub)
    _compare_parser(sub)
    _report_parser(sub)
    _preview_parser(sub)
    _peer_parser(sub)
    _predict_parser(sub)
    _export_parser(sub)
    return parser


def _datasets_parser(sub) -> None:
    p = sub.add_parser("datasets", help="list every dataset, and which are on disk")
    p.add_argument("--json", action="store_true")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--plugins", default="")


def _models_parser(sub) -> None:
    p = sub.add_parser("models", help="list model families and augmentations")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plugins", default="")


def _evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="re-score a prediction file in the medmnist format")
    _data_args(p)
    p.add_argument("--predictions", required=True, help="CSV of index,score... rows")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])


def _spaces_parser(sub) -> None:
    p = sub.add_parser("spaces", help="show or validate search_spaces/*.yaml")
    p.add_argument("--check", action="store_true", help="validate every file")
    p.add_argument("--dir", default=None, help="search space folder (default search_spaces/)")
    p.add_argument("--plugins", default="")


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one fixed configuration over K seeds, no search")
    _data_args(p)
    _common_args(p)
    p.add_argument("--model", required=True, help="family name, e.g. resnet18 or timm:NAME")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (seed, seed+1, ...)")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="stratified K-fold CV over train+val: one model per fold")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--protocol",
        default=None,
        choices=["medmnist-v2"],
        help="medmnist-v2: the paper's exact baseline recipe",
    )
    p.add_argument("--augment", default="none")
    p.add_argument(
        "--img-size", type=int, default=None, help="model input size (default: the data size)"
    )
    p.add_argument(
        "--pretrained",
        default=None,
        help="timm models: 'hub' for timm's pretrained weights or a checkpoint file",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a model or training hyperparameter (repeatable)",
    )


def _run_parser(sub) -> None:
    p = sub.add_parser("run", help="budgeted search, then a multi-seed final evaluation")
    add_flags(p, (*SEARCH_FLAGS, *RUN_FLAGS))


def _search_parser(sub) -> None:
    p = sub.add_parser("search", help="a worker that joins a study and only searches")
    add_flags(p, (*SEARCH_FLAGS, *WORKER_FLAGS))


def _leaderboard_parser(sub) -> None:
    p = sub.add_parser("leaderboard", help="gather records and rebuild leaderboards/")
    p.add_argument("--runs", nargs="*", default=[], help="run folders or record files")
    p.add_argument("--out", default="leaderboards")


def _compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="paired test difference A - B of two records (95 %% CI, p)")
    p.add_argument("a", metavar="RUN_OR_RECORD_A", help="run folder or record .json")
    p.add_argument("b", metavar="RUN_OR_RECORD_B", help="run folder or record .json")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")


def _report_parser(sub) -> None:
    p = sub.add_parser("report", help="write the plots of one run")
    p.add_argument("run_dir")


def _preview_parser(sub) -> None:
    p = sub.add_parser("augment-preview", help="PNG grid of originals beside augmented images")
    _data_args(p)
    p.add_argument("--augment", required=True)
    p.add_argument("--out", default=None, help="PNG path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plugins", default="")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def _peer_parser(sub) -> None:
    p = sub.add_parser("peer", help="run a peer AutoML system under the same budget")
    from bench.peers.systems import PEERS

    p.add_argument("system", choices=list(PEERS))
    _data_args(p)
    p.add_argument("--budget", required=True, help="wall-clock budget, e.g. 10m (required)")
    p.add_argument("--out", default="runs")
    p.add_argument("--python", default=None, help="interpreter of AutoGluon's own venv")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--backbone", default=None, help="autogluon: timm backbone (default mobilenetv3_large_100)"
    )
    p.add_argument(
        "--img-size",
        type=int,
        default=None,
        help="autogluon: model input size (default: the data size)",
    )
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="autogluon: download pretrained backbone weights (needs the network)",
    )


def _predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="apply a finished run's model to new images")
    p.add_argument("run_dir", help="folder of a finished bench run or bench train")
    p.add_argument("input", help="an image, a folder of images, or an npz in MedMNIST layout")
    p.add_argument("--out", default=None, help="CSV of class probabilities (default: none)")
    p.add_argument("--seed", type=int, default=None, help="one fit of the chosen config")
    p.add_argument("--ensemble", default=None, choices=["selected", "seeds"],
                   help="selected (default): the run's answer; seeds: the chosen config's fits")
    p.add_argument("--split", default=None, help="npz input: which split (default test)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quiet", action="store_true", help="no table on the terminal")


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="the run's model as one ONNX graph")
    p.add_argument("run_dir", help="folder of a finished bench run or bench train")
    p.add_argument("--onnx", required=True, help="ONNX file to write")
    p.add_argument("--seed", type=int, default=None, help="one fit instead of the ensemble")
    p.add_argument("--data-dir", default=None, help="where the run's data is (the check)")


def _interrupted(command: str) -> int:
    """Ctrl-C: one line (that a resumable command's study resumes) and exit 130."""
    again = "; run the same command again: the study resumes" if command in RESUMABLE else ""
    print(f"error: interrupted{again}", file=sys.stderr)
    return 130


def _closed_pipe() -> int:
    """The reader of stdout went away (``bench datasets | head -1``): stop quietly, as a
    command killed by SIGPIPE would. stdout is pointed at devnull first, so the interpreter's
    last flush fails no more (the Python docs' note on SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_CLOSED_PIPE


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bench`` console script."""
    parser = build_parser()
    args = parser.parse_args(_attach_values(list(sys.argv[1:] if argv is None else argv)))
    if not args.command:
        parser.print_help()
        return 2
    module, func = HANDLERS[args.command].split(":")
    try:
        if getattr(args, "plugins", ""):
            from bench.config import parse_list
            from bench.registry import import_plugins

            import_plugins(parse_list(args.plugins))
        if hasattr(args, "data_dir"):  # --data-dir or BENCH_DATA_DIR: a folder, before any work
            from bench.data.medmnist import resolve_data_dir

            resolve_data_dir(args.data_dir)
        handler = getattr(importlib.import_module(module), func)
        code = int(handler(args) or 0)
        sys.stdout.flush()  # here, so a closed pipe is caught below and not at exit
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except SystemExit as exc:  # rich's own answer to a closed pipe is SystemExit(1)
        if first_cause(exc, BrokenPipeError) is None:
            raise
        return _closed_pipe()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted(args.command)
    except Exception as exc:  # e.g. Optuna's own assertion, raised while handling ours
        from bench.files import describe, write_error

        if first_cause(exc, KeyboardInterrupt) is not None:  # cleanup that failed under Ctrl-C
            return _interrupted(args.command)  # (Optuna's journal lock unlinks twice)
        ours, err = first_cause(exc, BenchError), write_error(exc)
        if ours is None and err is None:
            raise
        line = str(ours) if ours is not None else describe(err, Path.cwd(), resumes=False)
        print(f"error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
