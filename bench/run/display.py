"""Progress of a search: a rich live panel on a terminal, or plain log lines (``--quiet``).

Shows trials done / pruned / failed, the best val score, the time left and the running
trial's epoch. Both modes write to stderr, so stdout keeps only the final summary.
"""

from __future__ import annotations

import math
import sys
import time

from bench.config import format_seconds


class Display:
    """Context manager fed by the objective (:meth:`event`) and Optuna (:meth:`trial_done`).

    Args:
        title: first line, e.g. the study name.
        end: monotonic time the whole command must end by (for "time left").
        quiet: plain lines instead of the live panel.
        metric: name of the val score.
    """

    def __init__(self, title: str, *, end: float, quiet: bool, metric: str = "auc") -> None:
        self.title = title
        self.end = end
        self.quiet = quiet or not sys.stderr.isatty()
        self.metric = metric
        self.counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0}
        self.best = -math.inf
        self.phase = "search"
        self.current = ""
        self._live = None

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Display:
        if not self.quiet:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                self._render(),
                console=Console(stderr=True),
                refresh_per_second=2,
                get_renderable=self._render,
                transient=False,
            )
            self._live.__enter__()
        self.log(self.title)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    # -- inputs -------------------------------------------------------------------------------
    def log(self, text: str) -> None:
        """One line above the panel (or on stderr)."""
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def event(self, ev) -> None:
        """A :class:`bench.search.TrialEvent` from the objective."""
        if ev.kind == "start":
            self.current = f"trial {ev.number} ({ev.family}): building"
        elif ev.kind == "epoch":
            self.current = (
                f"trial {ev.number} ({ev.family}): epoch {ev.epoch}/{ev.epochs}, "
                f"val {self.metric} {ev.value:.4f}"
            )

    def set_counts(self, study) -> None:
        """Refresh the counts and best value from ``study`` (all workers' trials)."""
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        self.counts = {
            "complete": states.count(TrialState.COMPLETE),
            "pruned": states.count(TrialState.PRUNED),
            "failed": states.count(TrialState.FAIL),
            "running": states.count(TrialState.RUNNING),
        }
        values = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        self.best = max(values, default=-math.inf)

    def trial_done(self, study, trial, *, worker: str = "") -> None:
        """Optuna callback: one line per finished trial (``worker``: another process's)."""
        self.set_counts(study)
        if not worker:
            self.current = ""
        state = trial.state.name.lower()
        value = f" val {self.metric} {trial.value:.4f}" if trial.value is not None else ""
        from bench.search import attrs

        user = trial.user_attrs
        reason = f" ({user[attrs.FAIL_REASON]})" if attrs.FAIL_REASON in user else ""
        family = trial.params.get("family", "?")
        epochs = user.get(attrs.EPOCHS_RUN, "?")
        secs = user.get(attrs.FIT_SECONDS)
        took = f", {secs:.1f}s" if isinstance(secs, (int, float)) else ""
        by = f" worker {worker}" if worker else ""
        self.log(
            f"trial {trial.number} {state}{value} [{family}, {epochs} epochs{took}]{reason}{by} | "
            f"{self.status()}"
        )

    def set_phase(self, text: str) -> None:
        """E.g. ``final fit 1/3``; logged too."""
        self.phase = text
        self.current = ""
        self.log(text)

    # -- output -------------------------------------------------------------------------------
    def status(self) -> str:
        """One line: trial counts, best val, time left."""
        c = self.counts
        best = f"{self.best:.4f}" if math.isfinite(self.best) else "-"
        left = format_seconds(max(0.0, self.end - time.monotonic()))
        return (
            f"done {c['complete']} pruned {c['pruned']} failed {c['failed']} | "
            f"best val {self.metric} {best} | left {left}"
        )

    def _render(self):
        from rich.panel import Panel
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        c = self.counts
        best = f"{self.best:.4f}" if math.isfinite(self.best) else "-"
        grid.add_row("phase", self.phase)
        grid.add_row(
            "trials",
            f"{c['complete']} done, {c['pruned']} pruned, {c['failed']} failed"
            f", {c['running']} running",
        )
        grid.add_row(f"best val {self.metric}", best)
        grid.add_row("time left", format_seconds(max(0.0, self.end - time.monotonic())))
        grid.add_row("now", self.current or "-")
        return Panel(grid, title=self.title, expand=False)
