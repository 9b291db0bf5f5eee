"""The final phase inside ``time_budget_s``: the search stops early enough to leave
time for the re-checks and refits that follow it.

What that training will cost is only known once trials run: it is estimated from the
trials themselves, as the epoch time of the best ones so far (measured with as many
trials at once as the final phase will run) times the epochs each job trains, over
the number of jobs that run at once. Ray Tune's own ``TimeoutStopper`` keeps counting
the budget; this stopper ends the search when what is left is no more than the
estimate.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

from ray import tune

from trainables.task import Objective


@dataclass(frozen=True)
class FinalWork:
    """The training the final phase will do, in jobs of a trial's size."""

    recheck_top_k: int
    recheck_seeds: int
    refit_members: int  # 0: no refit
    max_epochs: int
    at_once: int
    refit_scale: float  # (train + val) / train rows: a refit's epoch is this much longer

    def seconds(self, best: list[tuple[float, int]]) -> float:
        """Estimated seconds for ``best``: (epoch seconds, best epoch) of the best trials
        so far, best first."""
        recheck = [s * self.max_epochs for s, _ in best[: self.recheck_top_k]]
        refit = [s * e * self.refit_scale for s, e in best[: self.refit_members]]
        return wall(recheck * self.recheck_seeds, self.at_once) + wall(refit, self.at_once)


def wall(jobs: list[float], at_once: int) -> float:
    """Wall time of ``jobs`` (seconds each) run ``at_once`` at a time: their total
    shared out, but never less than the longest."""
    return max(sum(jobs) / max(1, at_once), max(jobs, default=0.0))


class FinalReserve(tune.Stopper):
    """Stops every trial once the budget left is what the final phase is estimated to
    need. The budget is counted like Tune's ``TimeoutStopper`` counts its own: from the
    first check, and not while the driver was dead (a resume)."""

    def __init__(self, budget_s: float, work: FinalWork, objective: Objective) -> None:
        self._left = budget_s
        self._last_check: float | None = None
        self._work = work
        self._objective = objective
        self._trials: dict[str, tuple[float, int, list[float]]] = {}  # best, epoch, times

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        value = result.get(self._objective.metric)
        seconds = result.get("epoch_seconds")
        if value is None or seconds is None or not math.isfinite(value):
            return False
        best, epoch, times = self._trials.get(trial_id, (self._objective.worst, 0, []))
        if self._objective.better(value, best):
            best, epoch = value, int(result.get("epoch", epoch + 1))
        self._trials[trial_id] = (best, epoch, [*times[-4:], float(seconds)])
        return False

    def reserve(self) -> float:
        """Seconds the final phase is estimated to need, from the best trials so far."""
        ranked = sorted(self._trials.values(), key=lambda t: self._objective.sort_key(t[0]))
        return self._work.seconds([(statistics.median(t[2]), t[1]) for t in ranked])

    def stop_all(self) -> bool:
        now = time.time()
        if self._last_check is not None:
            self._left -= now - self._last_check
        self._last_check = now
        return bool(self._trials) and self._left <= self.reserve()

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["_last_check"] = None  # the time a killed driver was down is not spent
        self.__dict__.update(state)
