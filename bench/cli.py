"""Command line: ``bench <command>``. Parsing only; each command's work lives in its module.

Exit status: 0 done, 2 the user's input was wrong (one ``error:`` line on stderr), 1 an
internal fault, 141 the reader of stdout went away (``bench datasets | head -1``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap
from pathlib import Path

from bench import __version__
from bench.errors import BenchError, first_cause
from bench.run.flags import (
    COMMON_FLAGS,
    DATA_FLAGS,
    RUN_FLAGS,
    SEARCH_FLAGS,
    SPACES_HELP,
    WORKER_FLAGS,
    add_flags,
)
from bench.terminal import FORMATS

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


class HelpFormatter(argparse.HelpFormatter):
    """Help that keeps a command's examples as written (indented lines stay as they are; the
    other lines are filled to the terminal), and shows each option's default after its help,
    unless the help says it already or there is none to say (None, '', False, [])."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        words: list[str] = []
        for line in [*text.splitlines(), ""]:
            if words and (not line.strip() or line[0].isspace()):
                out.append(textwrap.fill(" ".join(words), width, initial_indent=indent,
                                         subsequent_indent=indent))  # fmt: skip
                words = []
            if not line.strip() or line[0].isspace():
                out.append(indent + line if line.strip() else "")
            else:
                words.append(line.strip())
        return "\n".join(out).strip("\n")

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if not action.option_strings or text == argparse.SUPPRESS or "default" in text:
            return action.help
        if any(default is none for none in (None, False, argparse.SUPPRESS)) or default in ("", []):
            return action.help
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def _command(sub, name: str, summary: str, does: str, examples: str) -> argparse.ArgumentParser:
    """The parser of ``bench NAME``: ``summary`` in ``bench --help``; in its own ``--help``
    ``does`` (what it produces, and where) and ``examples`` (one command a line, ``#``
    comments allowed)."""
    return sub.add_parser(
        name,
        help=summary,
        description=textwrap.dedent(does).strip(),
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=HelpFormatter,
    )


def _format_args(p: argparse.ArgumentParser) -> None:
    """A listing's ``--format``, and ``--json``: its old spelling, kept as a hidden alias."""
    p.add_argument(
        "--format",
        default="table",
        choices=FORMATS,
        help="table for the terminal, json or csv for a program",
    )
    p.add_argument(
        "--json", dest="format", action="store_const", const="json", help=argparse.SUPPRESS
    )


def _data_args(p: argparse.ArgumentParser) -> None:
    add_flags(p, DATA_FLAGS)


def _common_args(p: argparse.ArgumentParser) -> None:
    add_flags(p, COMMON_FLAGS)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="bench",
        description="AutoML benchmark harness for medical image classification.",
        epilog="examples:\n  bench run --dataset breastmnist --budget 3m\n"
        "  bench datasets\n  bench COMMAND --help        # what COMMAND writes, its defaults",
        formatter_class=HelpFormatter,
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
    p = _command(
        sub,
        "datasets",
        "list every dataset, and which are on disk",
        """
        Prints every dataset bench knows (the MedMNIST 2D and 3D sets, medical_mnist and
        plugins): its task, channels, classes, split sizes, the data sizes it comes in
        (--size) and those found on disk. Writes no file. At a narrow terminal the table
        drops its least important columns (it says which); --format csv has them all.""",
        """
        bench datasets
        bench datasets --data-dir ~/medmnist --format csv > datasets.csv""",
    )
    _format_args(p)
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder of data files to look in (default: $BENCH_DATA_DIR, else "
        "the medmnist package's download folder and the embedded BreastMNIST)",
    )
    p.add_argument("--plugins", default="", help="comma-separated modules to import first")


def _models_parser(sub) -> None:
    p = _command(
        sub,
        "models",
        "list model families and augmentations",
        """
        Prints every model family (the name --model and --families take), its label, where
        it comes from, the input sizes it takes and its search space file; then every
        augmentation policy (the names --augment takes). Writes no file.""",
        """
        bench models
        bench models --plugins mypkg.bench_models --format json""",
    )
    _format_args(p)
    p.add_argument("--spaces", metavar="DIR", help=SPACES_HELP)
    p.add_argument("--plugins", default="", help="comma-separated modules to import first")


def _evaluate_parser(sub) -> None:
    p = _command(
        sub,
        "evaluate",
        "re-score a prediction file in the medmnist format",
        """
        Scores a prediction file on the official labels of the split: a `bench predict
        --out` CSV of an npz split, or medmnist's layout (one row per image, in order: the
        index, then one score per class, as a run folder's
        predictions/<dataset>_test_[AUC]..._[ACC]...@<fit>.csv files hold). Prints AUC, ACC
        and macro precision, recall and F1 as JSON. Writes no file.""",
        """
        bench evaluate --dataset breastmnist --predictions preds.csv
        bench evaluate --dataset pathmnist --size 64 --data-dir ~/medmnist \\
            --predictions preds.csv --split val""",
    )
    _data_args(p)
    p.add_argument("--predictions", required=True,
                   help="a bench predict --out CSV, or medmnist's index,score... rows")  # fmt: skip
    p.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="the split the rows are for")  # fmt: skip


def _spaces_parser(sub) -> None:
    p = _command(
        sub,
        "spaces",
        "show or validate the search spaces (YAML files)",
        """
        Prints every parameter of the search space files (its file, family, the name Optuna
        records, its type and range or choices): the package's, or those of --spaces DIR;
        with --check, validates every file instead and exits 2 if one is wrong. Writes no
        file.""",
        """
        bench spaces
        bench spaces --check --spaces my_spaces/""",
    )
    p.add_argument("--check", action="store_true", help="validate every file")
    p.add_argument("--spaces", metavar="DIR", help=SPACES_HELP)
    p.add_argument("--dir", dest="spaces", help=argparse.SUPPRESS)  # the old name
    _format_args(p)
    p.add_argument("--plugins", default="", help="comma-separated modules to import first")


def _train_parser(sub) -> None:
    p = _command(
        sub,
        "train",
        "train one fixed configuration over K seeds, no search",
        """
        Trains one fixed configuration (no search) --seeds times, seeds --seed, --seed+1,
        ..., and scores each fit and their average once on the test split. Writes the run
        folder OUT/<run_id>/ (record.json, models/, test_predictions.npz, fits.json,
        config.json, the medmnist-format prediction files) and prints a closing table;
        --augment with several policies writes one run folder per policy.""",
        """
        bench train --dataset breastmnist --model resnet18 --epochs 20 --seeds 3
        bench train --dataset breastmnist --model resnet18_3d --protocol medmnist-v2
        bench train --dataset breastmnist --model small_cnn --param lr=0.01 --cv 5""",
    )
    _data_args(p)
    _common_args(p)
    p.add_argument("--model", required=True, help="family name, e.g. resnet18 or timm:NAME")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of each fit (default 10; --protocol medmnist-v2: 100)")  # fmt: skip
    p.add_argument("--seeds", type=int, default=1, help="how many seeds: one fit each (default 1)")
    p.add_argument("--cv", type=int, default=None, metavar="K",
                   help="stratified K-fold CV over train+val: one model per fold")  # fmt: skip
    p.add_argument("--seed", type=int, default=0,
                   help="the first random seed: the fits use --seed, --seed+1, ...")  # fmt: skip
    p.add_argument("--protocol", default=None, choices=["medmnist-v2"],
                   help="medmnist-v2: the paper's exact baseline recipe")  # fmt: skip
    p.add_argument("--augment", default="none",
                   help="augmentation policy; several, comma-separated: one run each")  # fmt: skip
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
    p = _command(
        sub,
        "run",
        "budgeted search, then a multi-seed final evaluation",
        """
        Searches model families, augmentations and hyperparameters with Optuna for
        --budget (counted from the start, final fits included), refits the chosen
        configurations --seeds times and scores them once on the test split. Writes the run
        folder OUT/<run_id>/ (record.json, models/ with the ensemble it hands back,
        test_predictions.npz, trials.csv, journal.log, ...; the README's "What you get"
        lists them) and the study journal OUT/studies/<study>.journal, and prints a
        closing table. The same command again resumes an unfinished study.""",
        """
        bench run --dataset breastmnist --budget 3m
        bench run --dataset pathmnist --data-dir ~/medmnist --budget 4h --jobs 2
        bench run --dataset breastmnist --budget 10m --families small_cnn --seeds 5""",
    )
    add_flags(p, (*SEARCH_FLAGS, *RUN_FLAGS))


def _search_parser(sub) -> None:
    p = _command(
        sub,
        "search",
        "a worker that joins a study and only searches",
        """
        A worker: joins the study that a `bench run` with the same --dataset, --budget,
        --storage and --study runs (on this or another machine) and adds trials to it until
        the budget ends; no final fits, no run folder, no record. Writes only to the study's
        storage (by default the journal OUT/studies/<study>.journal).""",
        """
        bench search --dataset octmnist --budget 4h --storage sqlite:///s.db --study s
        bench run    --dataset octmnist --budget 4h --storage sqlite:///s.db --study s""",
    )
    add_flags(p, (*SEARCH_FLAGS, *WORKER_FLAGS))


def _leaderboard_parser(sub) -> None:
    p = _command(
        sub,
        "leaderboard",
        "gather records and rebuild leaderboards/",
        """
        Copies the record of each run in --runs into OUT/records/ (write-once; a record
        already there is kept) and rebuilds every table under OUT from all its records and
        the published MedMNIST v2 rows: results.csv (one row per evaluation),
        medmnist2d_<size>.md|csv, medmnist3d*.md, medical_mnist.md, reproductions.md and
        README.md. Prints each file written.""",
        """
        bench leaderboard --runs runs/breastmnist.28.3m.*
        bench leaderboard                       # rebuild the tables only""",
    )
    p.add_argument(
        "--runs",
        nargs="*",
        default=[],
        metavar="RUN",
        help="run folders or record .json files to add (default: none)",
    )
    p.add_argument(
        "--out",
        default="leaderboards",
        help="leaderboard folder: its records/ and the tables (default leaderboards)",
    )


def _compare_parser(sub) -> None:
    p = _command(
        sub,
        "compare",
        "paired test difference A - B of two records (95 %% CI, p)",
        """
        Answers "is A better than B?" on the same test set: for the single fits, the seed
        ensemble and the selected ensemble, the paired difference A - B in test AUC and ACC
        with its 95 % bootstrap interval, a two-sided p-value and a verdict. Prints it;
        writes no file.""",
        """
        bench compare runs/<run_a> runs/<run_b>
        bench compare leaderboards/records/<run_id>.json runs/<run_b> --format json""",
    )
    p.add_argument("a", metavar="RUN_OR_RECORD_A", help="run folder or record .json")
    p.add_argument("b", metavar="RUN_OR_RECORD_B", help="run folder or record .json")
    _format_args(p)


def _report_parser(sub) -> None:
    p = _command(
        sub,
        "report",
        "write the plots and a text summary of one run",
        """
        Writes into RUN_DIR/plots/ of a finished bench run, train or peer: the selected
        ensemble's confusion matrix and ROC curve (what bench predict answers), learning
        curves, the Optuna history and parameter importances (a search with >= 10 completed
        trials), DCGAN samples where used, and report.md (the run, its test figures with
        95 % intervals, the published rows). Prints each file written and a note for each
        plot skipped.""",
        """
        bench report runs/<run_id>""",
    )
    p.add_argument("run_dir", help="folder of a finished run")


def _preview_parser(sub) -> None:
    p = _command(
        sub,
        "augment-preview",
        "PNG grid of originals beside augmented images",
        """
        Writes one PNG: train images beside their augmented versions (dcgan: real beside
        generated images, per class; volumes: the central slice of each plane), and prints
        its path.""",
        """
        bench augment-preview --dataset breastmnist --augment simple
        bench augment-preview --dataset breastmnist --augment dcgan --out previews/""",
    )
    _data_args(p)
    p.add_argument("--augment", required=True, help="augmentation policy (see bench models)")
    p.add_argument(
        "--out",
        default=None,
        help="PNG file to write, or a folder for it (default: "
        "augment_preview_<dataset>_<augment>.png here)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the random seed: picks the images and the augmentations",
    )
    p.add_argument("--plugins", default="", help="comma-separated modules to import first")
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="auto: cuda when present, else cpu",
    )


def _peer_parser(sub) -> None:
    p = _command(
        sub,
        "peer",
        "run a peer AutoML system under the same budget",
        """
        Runs a peer AutoML system (autogluon: AutoGluon MultiModal in its own venv;
        constant: the train-prior floor) on the same data and budget, and scores it once on
        the test split like bench run. Writes the run folder OUT/<run_id>/ (record.json,
        test_predictions.npz, the medmnist-format prediction file); bench leaderboard adds
        it to the tables.""",
        """
        bench peer constant --dataset breastmnist --budget 3m
        bench peer autogluon --dataset breastmnist --budget 10m --img-size 224""",
    )
    from bench.peers.systems import PEERS

    p.add_argument("system", choices=list(PEERS), help="the peer system")
    _data_args(p)
    p.add_argument("--budget", required=True,
                   help="wall-clock budget: 4h, 90m, 45s (required: the same as the run "
                   "it is compared with)")  # fmt: skip
    p.add_argument(
        "--out",
        default="runs",
        help="folder the run folder OUT/<run_id>/ is made in (default runs)",
    )
    p.add_argument(
        "--python",
        default=None,
        help="interpreter of AutoGluon's own venv "
        "(default: ~/.cache/bench/autogluon-venv, built on first use)",
    )
    p.add_argument("--seed", type=int, default=0, help="the random seed of its one fit (default 0)")
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
    p = _command(
        sub,
        "predict",
        "apply a finished run's model to new images",
        """
        Applies the model a finished run hands back (its selected ensemble, or one fit) to
        new images, each converted as the model was trained, and prints a table of the
        class probabilities and the predicted class; --out writes the same as a CSV file,
        one row per input.""",
        """
        bench predict runs/<run_id> scans/ --out probs.csv
        bench predict runs/<run_id> data.npz --split val --seed 1""",
    )
    p.add_argument("run_dir", help="folder of a finished bench run or bench train")
    p.add_argument("input", help="an image, a folder of images, or an npz in MedMNIST layout")
    p.add_argument("--out", default=None, help="CSV file to write (default: none)")
    _one_fit_seed(p)
    p.add_argument(
        "--ensemble",
        default=None,
        choices=["selected", "seeds"],
        help="selected (default): the run's answer; seeds: the chosen config's fits",
    )
    p.add_argument("--split", default=None, help="npz input: which split (default test)")
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="auto: cuda when present, else cpu",
    )
    p.add_argument("--quiet", action="store_true", help="no table on the terminal")


def _one_fit_seed(p: argparse.ArgumentParser) -> None:
    """``--seed`` of the commands that apply a saved run: one fit instead of the ensemble."""
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="use only the fit trained with this seed (default: the ensemble)",
    )


def _export_parser(sub) -> None:
    p = _command(
        sub,
        "export",
        "the run's model as one ONNX graph",
        """
        Writes the model a finished run hands back (its selected ensemble, or one fit) as
        one ONNX graph that takes uint8 images in the data files' layout and returns
        probabilities, after checking it with onnxruntime against bench predict on the
        run's test split. Needs pip install -e ".[onnx]".""",
        """
        bench export runs/<run_id> --onnx model.onnx
        bench export runs/<run_id> --onnx seed1.onnx --seed 1""",
    )
    p.add_argument("run_dir", help="folder of a finished bench run or bench train")
    p.add_argument("--onnx", required=True, help="ONNX file to write")
    _one_fit_seed(p)
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder of the run's data files, for the check "
        "(default: $BENCH_DATA_DIR, else the medmnist package's)",
    )


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
