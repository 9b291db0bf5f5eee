"""Re-checking the best configs on fresh seeds, and what the final phase takes from it.

The search's winner is the best of dozens of noisy draws: its validation score is
partly luck (a lucky initialization, a validation split that suits it), so it is
optimistic, and the runner-up may be the better config. Training the top
``recheck.top_k`` configs again on ``recheck.seeds`` fresh seeds and picking on the mean
validation score picks the config, not the draw; the winner's search score minus its
re-check mean (``optimism_gap``) says how much of its score was luck. The search's own
run is left out of the mean: it is the draw selection favoured.

Pure functions over the jobs' results (no Ray, no MLflow): ``search/finish.py`` runs
the jobs and records what these return.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from search.final_model import Ranked
from search.retrain import Done, Job
from trainables.task import Objective


@dataclass(frozen=True)
class Checked:
    """A config's re-check: its best validation value and best epoch per fresh seed
    (NaN and 0 where the run failed)."""

    trial: Ranked
    values: tuple[float, ...]
    epochs: tuple[int, ...]

    @property
    def finite(self) -> list[float]:
        return [v for v in self.values if math.isfinite(v)]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.finite) if self.finite else float("nan")

    @property
    def std(self) -> float:
        return statistics.stdev(self.finite) if len(self.finite) > 1 else 0.0

    @property
    def failures(self) -> int:
        return len(self.values) - len(self.finite)


def fresh_seeds(seed: int, count: int, skip: int = 0) -> list[int]:
    """``count`` seeds no trial trained with (every trial uses ``seed`` itself), after
    the first ``skip`` of them (those the re-checks took)."""
    return [seed + 1 + skip + i for i in range(count)]


def recheck_jobs(top: list[Ranked], seeds: list[int], max_epochs: int) -> list[Job]:
    """One job per config and seed, seed-major: every config gets its first fresh
    seed before any gets a second."""
    return [Job("recheck", t.trial_id, t.params, s, max_epochs) for s in seeds for t in top]


def summarize(top: list[Ranked], done: list[Done]) -> list[Checked]:
    """Each config's re-check, in ``top``'s order, its seeds in the order given."""
    by_trial: dict[str, list[Done]] = {t.trial_id: [] for t in top}
    for d in done:
        by_trial[d.job.trial_id].append(d)
    checked = []
    for t in top:
        runs = sorted(by_trial[t.trial_id], key=lambda d: d.job.seed)
        values = tuple(float("nan") if d.error else d.best for d in runs)
        checked.append(Checked(t, values, tuple(0 if d.error else d.best_epoch for d in runs)))
    return checked


def pick(checked: list[Checked], objective: Objective) -> Checked:
    """The config with the best re-check mean among those none of whose re-checks
    failed (a config that diverges on some seeds is not the one to ship); the search's
    ranking breaks ties."""
    sound = [c for c in checked if c.failures == 0 and c.finite] or checked
    return min(sound, key=lambda c: objective.sort_key(c.mean))


def optimism_gap(winner: Checked, objective: Objective) -> float:
    """How much better the winner's search score is than its re-check mean (positive:
    the search was optimistic), in the objective's units."""
    sign = 1.0 if objective.mode == "max" else -1.0
    return sign * (winner.trial.value - winner.mean)


def refit_epochs(trial: Ranked, checked: Checked | None) -> int:
    """The epoch count a refit trains for: the median best epoch over the config's
    runs (its trial, and its re-checks if any)."""
    epochs = [trial.best_epoch, *(e for e in (checked.epochs if checked else ()) if e > 0)]
    return max(1, round(statistics.median(epochs)))


def table(checked: list[Checked], chosen: Checked, objective: Objective) -> list[dict[str, Any]]:
    """The re-check table (one row per config, search rank order): the search's value
    and best epoch, each seed's value, mean, spread, failures, and which was picked."""
    rows = []
    for rank, c in enumerate(checked, 1):
        row: dict[str, Any] = {
            "search_rank": rank,
            "trial": c.trial.label,
            f"search_{objective.metric}": c.trial.value,
            "search_best_epoch": c.trial.best_epoch,
        }
        row |= {f"seed_{i + 1}": v for i, v in enumerate(c.values)}
        row |= {
            f"recheck_mean_{objective.metric}": c.mean,
            "recheck_std": c.std,
            "failed": c.failures,
            "picked": c is chosen,
        }
        rows.append(row)
    return rows
