"""A compact progress view: trial states, best so far, elapsed time; one line at a time
so it reads the same in a terminal, a CI log or a file."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ray.tune import Callback
from ray.tune.experiment import Trial

from search.algorithms import METRIC
from search.callbacks import FINISHED_FLAG, trial_label


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in params.items())


class ProgressCallback(Callback):
    """Prints a status line every ``interval`` seconds and when a trial ends."""

    def __init__(
        self,
        total: int,
        interval: float = 15.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.interval = interval
        self.stream = stream or sys.stdout
        self.clock = clock
        self.started = clock()
        self.last_print = 0.0
        self.best: tuple[float, str, dict[str, Any]] | None = None
        self.counts = {"completed": 0, "stopped": 0, "failed": 0}
        self.started_trials: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles callbacks with the experiment; the stream and clock stay behind."""
        state = dict(self.__dict__)
        state.pop("stream", None)
        state.pop("clock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stream = sys.stdout
        self.clock = time.monotonic
        self.started = self.clock()

    def on_trial_start(self, iteration, trials, trial: Trial, **info):
        self.started_trials.add(trial.trial_id)

    def on_trial_result(self, iteration, trials, trial: Trial, result: dict, **info):
        value = result.get(METRIC)
        if value is not None and (self.best is None or value > self.best[0]):
            self.best = (float(value), trial_label(trial), dict(trial.config))

    def on_trial_complete(self, iteration, trials, trial: Trial, **info):
        finished = (trial.last_result or {}).get(FINISHED_FLAG)
        self.counts["completed" if finished else "stopped"] += 1
        self._print(trials)

    def on_trial_error(self, iteration, trials, trial: Trial, **info):
        self.counts["failed"] += 1
        self._print(trials)

    def on_step_end(self, iteration, trials, **info):
        if self.clock() - self.last_print >= self.interval:
            self._print(trials)

    def _print(self, trials: list[Trial]) -> None:
        self.last_print = self.clock()
        elapsed = int(self.last_print - self.started)
        ended = sum(self.counts.values())
        running = len(self.started_trials) - ended
        line = (
            f"[{elapsed // 60:d}:{elapsed % 60:02d}] trials {ended}/{self.total} ended "
            f"({self.counts['completed']} completed, {self.counts['stopped']} stopped early, "
            f"{self.counts['failed']} failed), {running} running"
        )
        if self.best is not None:
            value, label, params = self.best
            line += f" | best {METRIC} {value:.4f} {label}: {format_params(params)}"
        print(line, file=self.stream, flush=True)
