"""What the user sees while a sweep runs.

In a terminal: a live panel (Rich) redrawn as results arrive — trials running /
completed / pruned / failed, each running trial's epoch and objective metric, the best
trial so far with its params, elapsed time and an estimate of what is left.
Anywhere else (CI, a log file, a pipe): one plain line every ``interval`` seconds and
whenever a trial ends, so logs stay readable and grep-able.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ray.tune import Callback
from ray.tune.experiment import Trial

from search.callbacks import FINISHED_FLAG, error_text, trial_label, trial_params
from trainables.task import Objective

DEFAULT_OBJECTIVE = Objective("val_accuracy", "max")
# The line of a Python traceback that names the exception: "pkg.mod.SomeError: text"
_RAISED = re.compile(r"^(?:\w+\.)*(\w+(?:Error|Exception|Exit|Interrupt)\b.*)$")
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours the task's name in its errors
ERROR_CHARS = 300


def error_line(text: str) -> str:
    """One line for a trial's error (``text``: Tune's error file, every failure so far):
    of the latest failure, the exception a traceback ends with (its module left out), or
    the line saying why an actor died (a lost node, a killed worker), else its first."""
    latest = _COLOUR.sub("", text.rsplit("Failure # ", 1)[-1])
    lines = [ln.strip() for ln in latest.splitlines()[1 if "Failure # " in text else 0 :]]
    lines = [ln for ln in lines if ln] or ["no error recorded"]
    raised = [m.group(1) for ln in lines if (m := _RAISED.match(ln))]
    why = [ln for ln in lines if ln.startswith("The actor") and "because" in ln]
    line = raised[-1] if raised else (why or lines)[0]
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 3] + "..."


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class SweepProgress:
    """The counts and estimates both views show; fed by the callback, no I/O."""

    total: int
    max_epochs: int
    budget_s: float | None = None
    started: float = 0.0
    objective: Objective = DEFAULT_OBJECTIVE
    counts: dict[str, int] = field(
        default_factory=lambda: {"completed": 0, "pruned": 0, "failed": 0}
    )
    running: dict[str, tuple[int, float | None, dict[str, Any]]] = field(default_factory=dict)
    best: tuple[float, str, dict[str, Any]] | None = None

    @property
    def ended(self) -> int:
        return sum(self.counts.values())

    def eta(self, now: float) -> float | None:
        """Seconds left: trials left x seconds per ended trial so far, capped by the time
        budget; None before any trial has ended (no rate to go on)."""
        elapsed = now - self.started
        estimates = []
        if self.budget_s is not None:
            estimates.append(max(0.0, self.budget_s - elapsed))
        if self.ended:
            estimates.append(elapsed / self.ended * max(0, self.total - self.ended))
        return min(estimates) if estimates else None

    def line(self, now: float) -> str:
        eta = self.eta(now)
        left = f", ~{_clock_text(eta)} left" if eta is not None else ""
        text = (
            f"[{_clock_text(now - self.started)}{left}] trials {self.ended}/{self.total} ended "
            f"({self.counts['completed']} completed, {self.counts['pruned']} pruned, "
            f"{self.counts['failed']} failed), {len(self.running)} running"
        )
        if self.best is not None:
            value, label, params = self.best
            text += f" | best {self.objective.metric} {value:.4f} {label}: {format_params(params)}"
        return text

    def panel(self, now: float) -> Any:
        """The live view: a Rich renderable."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        eta = self.eta(now)
        head = Text.assemble(
            ("elapsed ", "dim"),
            (_clock_text(now - self.started), "bold"),
            ("   left ", "dim"),
            (_clock_text(eta) if eta is not None else "?", "bold"),
        )
        # the counts on a line of their own: one 80-column line each, never wrapped
        counts = Text.assemble(
            ("trials ", "dim"),
            (f"{self.ended}/{self.total} ended  ", "bold"),
            (f"{len(self.running)} running  ", "cyan"),
            (f"{self.counts['completed']} completed  ", "green"),
            (f"{self.counts['pruned']} pruned  ", "yellow"),
            (f"{self.counts['failed']} failed", "red"),
        )
        table = Table(box=None, pad_edge=False, header_style="dim")
        for column in ("trial", "epoch", self.objective.metric, "params"):
            table.add_column(column, overflow="fold")
        for label, (epoch, value, params) in sorted(self.running.items()):
            table.add_row(
                label,
                f"{epoch}/{self.max_epochs}",
                "-" if value is None else f"{value:.4f}",
                format_params(params),
            )
        parts: list[Any] = [head, counts]
        if self.running:
            parts.append(table)
        if self.best is not None:
            value, label, params = self.best
            parts.append(
                Text.assemble(
                    ("best ", "dim"),
                    (f"{self.objective.metric} {value:.4f} ", "bold green"),
                    (f"{label}: ", ""),
                    (format_params(params), "dim"),
                )
            )
        return Group(*parts)


class ProgressCallback(Callback):
    """Feeds a SweepProgress from Tune's events and shows it: a live Rich panel when
    ``stream`` is a terminal, plain lines otherwise."""

    def __init__(
        self,
        total: int,
        interval: float = 15.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_epochs: int = 0,
        budget_s: float | None = None,
        live: bool | None = None,
        objective: Objective = DEFAULT_OBJECTIVE,
    ) -> None:
        self.stream = stream or sys.stdout
        self.clock = clock
        self.interval = interval
        self.state = SweepProgress(total, max_epochs, budget_s, clock(), objective)
        self.live_view = self.stream.isatty() if live is None else live
        self.last_print = -float("inf")
        self._live: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles callbacks with the experiment; the stream, clock and live view
        stay behind."""
        state = dict(self.__dict__)
        for key in ("stream", "clock", "_live"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stream = sys.stdout
        self.clock = time.monotonic
        self._live = None
        self.state.started = self.clock()

    # -- Tune events ------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial: Trial, **info):
        self.state.running[trial_label(trial)] = (0, None, trial_params(trial))
        self._show(force=self.live_view)

    def on_trial_result(self, iteration, trials, trial: Trial, result: dict, **info):
        label = trial_label(trial)
        objective = self.state.objective
        value = result.get(objective.metric)
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        self.state.running[label] = (epoch, value, trial_params(trial))
        best = self.state.best
        if value is not None and (best is None or objective.better(value, best[0])):
            self.state.best = (float(value), label, trial_params(trial))
        self._show(force=self.live_view)

    def on_trial_complete(self, iteration, trials, trial: Trial, **info):
        finished = (trial.last_result or {}).get(FINISHED_FLAG)
        self.state.counts["completed" if finished else "pruned"] += 1
        self.state.running.pop(trial_label(trial), None)
        self._show(force=True)

    def on_trial_recover(self, iteration, trials, trial: Trial, **info):
        # said by the driver itself: the workers' output is not forwarded (search/quiet.py)
        self._say(f"  {trial_label(trial)} failed, retrying: {error_line(error_text(trial))}")

    def on_trial_error(self, iteration, trials, trial: Trial, **info):
        self.state.counts["failed"] += 1
        self.state.running.pop(trial_label(trial), None)
        self._say(f"  {trial_label(trial)} failed: {error_line(error_text(trial))}")
        self._show(force=True)

    def on_step_end(self, iteration, trials, **info):
        self._show(force=False)

    def on_experiment_end(self, trials, **info):
        self.close()

    # -- output -----------------------------------------------------------------------
    def _say(self, line: str) -> None:
        """A line of its own: above the live view, or between the plain lines (an error
        may quote a tracking URI: credentials masked)."""
        from tracking.secrets import mask

        line = mask(line)
        if self._live is not None:
            self._live.console.print(line, highlight=False, markup=False)
        else:
            print(line, file=self.stream, flush=True)

    def _show(self, force: bool) -> None:
        now = self.clock()
        if self.live_view:
            if force or now - self.last_print >= 1.0:  # the clock ticks once a second
                self.last_print = now
                self._live_update(now)
            return
        if force or now - self.last_print >= self.interval:
            self.last_print = now
            print(self.state.line(now), file=self.stream, flush=True)

    def _live_update(self, now: float) -> None:
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, force_terminal=True)
            self._live = Live(console=console, auto_refresh=False, transient=False)
            self._live.start()
        self._live.update(self.state.panel(now), refresh=True)

    def close(self) -> None:
        """End the live view (leaves its last frame on screen)."""
        if self._live is not None:
            self._live.stop()
            self._live = None
