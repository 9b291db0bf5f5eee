"""Transfer vs from scratch: after a transfer sweep that searched both (``from_scratch``),
each arm's best trial, its best checkpoint scored on the test set, and (with
``recheck.top_k``) its config trained again on the re-check's fresh seeds. A single
comparison can be luck of the random seed (the text admits its 99.25% vs 97.2% "tortured
the data"), so the verdict rests on the re-checked means.

The parent run gets ``arm_<arm>_best_<objective>``, ``arm_<arm>_test_<metric>``, with
re-checks ``arm_<arm>_recheck_mean_<objective>`` / ``_std_``, and ``transfer/arms.csv``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from search.final_model import Ranked, final_model
from search.recheck import Checked, fresh_seeds, recheck_jobs, summarize

ARMS_TABLE = "transfer/arms.csv"


def best_of_arms(ranked: list[Ranked]) -> dict[str, Ranked]:
    """Each arm's best trial (``ranked``: best first); empty unless both arms ran."""
    best: dict[str, Ranked] = {}
    for t in ranked:
        best.setdefault("scratch" if t.params.get("from_scratch") else "transfer", t)
    return best if len(best) == 2 else {}


def compare_arms(
    plan: Any,
    ranked: list[Ranked],
    checked: list[Checked],
    run_jobs: Callable[[list[Any]], list[Any]],
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(metrics, table rows) comparing the arms; nothing when only one arm ran.
    ``checked``: the sweep's own re-checks, reused for an arm's best config they hold;
    ``run_jobs`` trains the others (as the re-check does)."""
    best = best_of_arms(ranked)
    if not best:
        return {}, []
    settings, objective = plan.settings, plan.objective
    rechecks = {c.trial.trial_id: c for c in checked}
    missing = [t for t in best.values() if t.trial_id not in rechecks]
    if settings.recheck_top_k and missing:
        seeds = fresh_seeds(settings.seed, settings.recheck_seeds)
        done = run_jobs(recheck_jobs(missing, seeds, settings.max_epochs))
        rechecks |= {c.trial.trial_id: c for c in summarize(missing, done)}
    metrics: dict[str, float] = {}
    rows = []
    for arm, trial in best.items():
        test = _test(plan, trial)
        row = {"arm": arm, "trial": trial.label, f"best_{objective.metric}": trial.value}
        row |= {f"test_{k}": v for k, v in test.items()}
        again = rechecks.get(trial.trial_id)
        if again is not None:
            row[f"recheck_mean_{objective.metric}"] = again.mean
            row[f"recheck_std_{objective.metric}"] = again.std
            row["recheck_seeds"] = len(again.finite)
        metrics |= {f"arm_{arm}_{k}": float(v) for k, v in row.items() if _number(v)}
        rows.append(row)
    return metrics, rows


def _test(plan: Any, trial: Ranked) -> dict[str, float]:
    """The trial's best checkpoint scored on the test split."""
    from trainables.evaluate import score

    model = final_model([trial], plan.data, plan.objective, 1).model
    return score(model, plan.data, "test")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
