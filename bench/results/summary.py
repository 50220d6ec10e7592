"""A record in words: the three test figures with their 95 % intervals (single-fit mean, seed
ensemble, selected ensemble), the published MedMNIST v2 rows inside the selected ensemble's
interval (``bench run``'s closing table), and the text summary ``bench report`` writes beside
its PNGs (:func:`report_markdown`)."""

from __future__ import annotations

import json

from bench.errors import BenchError
from bench.results.intervals import inside, with_interval
from bench.results.records import Record, load_record

REPORT_FILE = "report.md"


def summary_rows(record: Record) -> list[tuple[str, list[str]]]:
    """(label, [AUC, ACC]) of the single-fit mean ± std, the seed ensemble and the selected
    ensemble, each with its interval."""

    def cell(prefix: str, metric: str, value: float, std: float | None = None) -> str:
        lo, hi = (getattr(record, f"{prefix}_{metric}_{end}") for end in ("lo", "hi"))
        return with_interval(value, lo, hi, std=std)

    single = [cell("test", m, getattr(record, f"test_{m}_mean"), getattr(record, f"test_{m}_std"))
              for m in ("auc", "acc")]  # fmt: skip
    rows = [(f"{record.method} (single fit, mean ± std)", single)]
    for prefix, label in (("seed_ensemble_test", "seed ensemble"),
                          ("ensemble_test", "selected ensemble (bench predict)")):  # fmt: skip
        values = {m: getattr(record, f"{prefix}_{m}") for m in ("auc", "acc")}
        if None not in values.values():
            rows.append((f"{record.method}, {label}",
                         [cell(prefix, m, v) for m, v in values.items()]))  # fmt: skip
    return rows


def published_inside(record: Record, published: list[dict]) -> str:
    """One line: the published rows whose AUC / ACC lie inside the selected ensemble's 95 %
    interval (indistinguishable from it on this test set)."""
    parts = []
    for metric in ("auc", "acc"):
        lo, hi = getattr(record, f"ensemble_test_{metric}_lo"), getattr(
            record, f"ensemble_test_{metric}_hi")  # fmt: skip
        if lo is None:
            return "no interval: the run kept no test predictions"
        names = [r["method"] for r in published if inside(r[f"test_{metric}_mean"], lo, hi)]
        parts.append(f"{metric.upper()} [{lo:.3f}, {hi:.3f}]: "
                     f"{', '.join(names) if names else 'none'}")  # fmt: skip
    return ("published rows inside the selected ensemble's 95 % interval: "
            + "; ".join(parts))  # fmt: skip


def published_for(dataset: str) -> tuple[str, list[dict]]:
    """(table name, rows) of the published MedMNIST v2 rows that apply to ``dataset``; no rows
    for a dataset without any (or one whose files are gone)."""
    from bench.data.catalog import get_dataset
    from bench.reference import PUBLISHED, published_rows

    try:
        flag = get_dataset(dataset).published_as
    except BenchError:
        return PUBLISHED, []
    if not flag:
        return PUBLISHED, []
    return (PUBLISHED if flag == dataset else f"{PUBLISHED} ({flag})"), published_rows(flag)


def report_markdown(data: dict, *, files: list[tuple[str, str]], notes: list[str]) -> str:
    """``report.md``: what the run was, its test figures and the published rows beside them,
    then the files written (name, what it shows) and the notes on what was skipped."""
    lines = [f"# bench report: {data.get('method') or 'run'} on {data.get('dataset', '?')}", ""]
    if data:
        record = load_record(data)
        lines += [f"Run `{record.run_id}` ({record.kind or 'run'}, {record.utc}).", ""]
        lines += _run_lines(record) + [""] + _figure_lines(record)
    else:
        lines += ["No record.json: the run did not finish, so there are no test figures.", ""]
    lines += ["## Files written", ""] + [f"- `{name}`: {what}" for name, what in files]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _run_lines(record: Record) -> list[str]:
    """Dataset, budget and times, trials, final fits and the chosen configuration."""
    seeds = f"{record.n_seeds} final fit{'s' * (record.n_seeds != 1)}"
    seeds += f" (seeds {record.seeds.replace(';', ', ')})" if record.seeds else ""
    if record.budget_s:
        budget = f"{record.constraint} ({record.budget_s} s)"
    else:
        budget = f"none ({record.kind or 'run'}: a fixed configuration)"
    unfinished = f", {record.n_unfinished} unfinished" if record.n_unfinished else ""
    chosen = record.method or record.family
    if record.best_trial is not None:
        chosen += f", trial {record.best_trial}"
    if record.val_score is not None:
        chosen += f", val {record.objective} {record.val_score:.4f}"
    lines = [
        f"- dataset: {record.dataset} ({record.task}), data size {record.data_size}, model "
        f"input {record.img_size}",
        f"- budget: {budget}; search {record.search_s} s, final {record.final_s} s, wall "
        f"{record.wall_s} s",
        f"- trials: {record.n_trials} ({record.n_complete} completed, {record.n_pruned} "
        f"pruned, {record.n_failed} failed{unfinished})",
        f"- {seeds}; device {record.device or '?'}",
        f"- chosen configuration: {chosen}",
        f"  `{json.dumps(record.params, sort_keys=True)}`",
    ]
    members = [f"trial {m.get('trial')} {m.get('family')} x{m.get('weight')}"
               for m in record.ensemble_members]  # fmt: skip
    if len(members) > 1:
        lines.append("- selected ensemble: " + ", ".join(members))
    return lines


def _figure_lines(record: Record) -> list[str]:
    """The test figures with their intervals, then the published rows and which of them lie
    inside the selected ensemble's interval."""
    if not record.ok or record.test_auc_mean is None:
        return [f"No test figures: status {record.status}. {record.info}".rstrip(), ""]
    n = f"{record.n_test} test items" if record.n_test else "the test items"
    lines = ["## Test figures", "",
             f"AUC / ACC [95 % interval: percentile bootstrap over {n}].", "",
             "| figure | AUC | ACC |", "| --- | --- | --- |"]  # fmt: skip
    lines += [f"| {label} | {auc} | {acc} |" for label, (auc, acc) in summary_rows(record)]
    lines.append("")
    table, published = published_for(record.dataset)
    if published:
        lines += [f"## Published baselines ({table})", "", "| method | AUC | ACC |",
                  "| --- | --- | --- |"]  # fmt: skip
        lines += [f"| {r['method']} | {r['test_auc_mean']:.3f} | {r['test_acc_mean']:.3f} |"
                  for r in published]  # fmt: skip
        lines += ["", published_inside(record, published) + ".", ""]
    return lines
