"""`python -m bench final`: which final model to register, measured on the test set.

One search per seed (dnn-sweep's own defaults, ``time_budget_s`` of search, nothing
trained after it), then every way to make the final model from that same search, each
scored once on the shared test split, with the training seconds it adds:

    checkpoint            the search's best trial, its best checkpoint (no training)
    ensemble              greedy ensemble of the best checkpoints (inference only)
    refit                 the best config retrained on train + val, fresh seed
    ensemble_refit        each ensemble member refit, averaged with the same weights
    recheck_*             the same four, led by the re-check's pick (top_k configs on
                          `seeds` fresh seeds, picked on the mean validation score)

The variants share one search, so their test scores differ only by what is done
after it; the seconds column says what each costs (inside ``time_budget_s`` that time
is taken from the search, see search/budget.py).

    python -m bench final --seeds 0,1,2 --budget-min 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from search.budget import wall

ENSEMBLE = 10
VARIANTS = (
    "checkpoint",
    "ensemble",
    "refit",
    "ensemble_refit",
    "recheck_checkpoint",
    "recheck_ensemble",
    "recheck_refit",
    "recheck_ensemble_refit",
)


def _search(out: Path, seed: int, budget_s: float, overrides: list[str]) -> tuple[Any, Any]:
    """The search (final phase off); its plan's settings and its result grid."""
    from ray import tune

    from dnn_sweep import run_sweep
    from search.tune_trial import run_trial

    storage = out / "ray"
    out.mkdir(parents=True, exist_ok=True)
    run_sweep(
        [
            f"name=final-{seed}",
            f"seed={seed}",
            "trials=100000",
            f"time_budget_s={budget_s}",
            "recheck.top_k=0",
            "final.refit=false",
            "ensemble.size=1",
            f"tracking.uri=sqlite:///{out / 'mlflow.db'}",
            f"ray.storage_path={storage}",
            *overrides,
        ],
        echo=lambda line: print(f"  [seed {seed}] {line}", flush=True),
    )
    (folder,) = [p for p in storage.iterdir() if p.name.startswith(f"final-{seed}-")]
    return tune.Tuner.restore(str(folder), trainable=run_trial).get_results()


def _settings(seed: int, overrides: list[str]) -> Any:
    from search.config import compose_user, to_plain
    from search.settings import load_settings

    return load_settings(to_plain(compose_user([f"seed={seed}", *overrides])))


class Finals:
    """Every variant's model from one search: refits are trained once per
    (config, epochs) and shared between variants."""

    def __init__(self, grid: Any, settings: Any, top_k: int, seeds: int) -> None:
        from search.final_model import ranked_trials
        from trainables.data import load_dataset
        from trainables.task import Objective

        self.data = load_dataset(settings.dataset, settings.seed, settings.task)
        self.settings = settings
        self.objective = Objective.for_task(self.data.task)
        self.ranked = ranked_trials(grid, self.objective)
        self.top_k, self.seeds = top_k, seeds
        self.refits: dict[tuple[str, int], Any] = {}
        self.refit_seconds: dict[tuple[str, int], float] = {}
        self.seconds: dict[str, float] = {}
        self.checked: list[Any] = []

    def _jobs(self, jobs: list[Any]) -> list[Any]:
        from search.retrain import Options, run_jobs

        options = Options(
            self.settings.max_epochs,
            (self.objective.metric, self.objective.mode),
            steps_per_execution=self.settings.steps_per_execution,
        )
        started = time.monotonic()
        done = list(run_jobs(jobs, self.data, options, {"cpu": 1}, self.settings.max_concurrent))
        self._spent = time.monotonic() - started
        return done

    def recheck(self) -> Any:
        """The re-check of the best ``top_k``; its pick."""
        from search.recheck import fresh_seeds, pick, recheck_jobs, summarize

        top = self.ranked[: self.top_k]
        jobs = recheck_jobs(
            top, fresh_seeds(self.settings.seed, self.seeds), self.settings.max_epochs
        )
        self.checked = summarize(top, self._jobs(jobs))
        self.seconds["recheck"] = self._spent
        return pick(self.checked, self.objective)

    def model(self, lead: str, ensemble: bool, refit: bool) -> tuple[Any, float, list[str]]:
        """The variant's model, the refit seconds it needed, its members."""
        from search.final_model import final_model, led_by

        pool = led_by(self.ranked, lead)[:ENSEMBLE]
        final = final_model(pool, self.data, self.objective, ENSEMBLE if ensemble else 1)
        labels = [f"{t.label}:{w:.2f}" for t, w in final.members]
        if not refit:
            return final.model, 0.0, labels
        return self._refit(final), self._spent, labels

    def _refit(self, final: Any) -> Any:
        from search.recheck import fresh_seeds, refit_epochs
        from search.retrain import Job, load_model
        from trainables.ensemble import average_model

        by_trial = {c.trial.trial_id: c for c in self.checked}
        seed = fresh_seeds(self.settings.seed, 1, skip=self.seeds)[0]
        wanted = [(t, refit_epochs(t, by_trial.get(t.trial_id))) for t, _ in final.members]
        jobs = [
            Job("refit", t.trial_id, t.params, seed, e)
            for t, e in wanted
            if (t.trial_id, e) not in self.refits
        ]
        for d in self._jobs(jobs) if jobs else []:
            if d.error:
                raise RuntimeError(d.error)
            self.refits[(d.job.trial_id, d.job.epochs)] = load_model(d.model)
            self.refit_seconds[(d.job.trial_id, d.job.epochs)] = d.seconds
        # what the variant's refits cost run as the final phase runs them (shared here)
        keys = list(dict.fromkeys((t.trial_id, e) for t, e in wanted))
        self._spent = wall([self.refit_seconds[k] for k in keys], self.settings.max_concurrent)
        models = [self.refits[(t.trial_id, e)] for t, e in wanted]
        return average_model(models, [w for _, w in final.members])


def run_seed(
    out: Path, seed: int, budget_s: float, overrides: list[str], top_k: int, seeds: int
) -> dict[str, Any]:
    from search.recheck import optimism_gap
    from trainables.evaluate import score

    started = time.monotonic()
    grid = _search(out, seed, budget_s, overrides)
    search_s = time.monotonic() - started
    finals = Finals(grid, _settings(seed, overrides), top_k, seeds)
    winner = finals.ranked[0]
    row: dict[str, Any] = {
        "seed": seed,
        "search_seconds": search_s,
        "trials": len(finals.ranked),
        "winner": winner.label,
        "winner_val": winner.value,
    }
    variants: dict[str, Any] = {}
    for name in VARIANTS[:4]:
        model, spent, members = finals.model(winner.trial_id, "ensemble" in name, "refit" in name)
        variants[name] = {
            "test": score(model, finals.data, "test")["accuracy"],
            "seconds": spent,
            "members": members,
        }
        print(f"  [seed {seed}] {name}: {variants[name]['test']:.4f} (+{spent:.0f} s)", flush=True)
    chosen = finals.recheck()
    row |= {
        "recheck_seconds": finals.seconds["recheck"],
        "recheck_pick": chosen.trial.label,
        "recheck_mean": chosen.mean,
        "optimism_gap": optimism_gap(finals.checked[0], finals.objective),
        "recheck_table": [
            {"trial": c.trial.label, "search": c.trial.value, "seeds": list(c.values)}
            for c in finals.checked
        ],
    }
    for name in VARIANTS[4:]:
        model, spent, members = finals.model(
            chosen.trial.trial_id, "ensemble" in name, "refit" in name
        )
        spent += finals.seconds["recheck"]
        variants[name] = {
            "test": score(model, finals.data, "test")["accuracy"],
            "seconds": spent,
            "members": members,
        }
        print(f"  [seed {seed}] {name}: {variants[name]['test']:.4f} (+{spent:.0f} s)", flush=True)
    row["variants"] = variants
    return row


def _markdown(rows: list[dict[str, Any]], budget_s: float) -> str:
    seeds = [r["seed"] for r in rows]
    lines = [
        f"Search: {budget_s:.0f} s per seed (defaults, final phase off); then each variant "
        "from the same search, scored once on the 10k test set. `+s`: training seconds the "
        "variant adds after the search (re-check variants include the re-check).",
        "",
        "| variant | " + " | ".join(f"seed {s}" for s in seeds) + " | median | +s (median) |",
        "|---|" + "---|" * (len(seeds) + 2),
    ]
    for name in VARIANTS:
        tests = [r["variants"][name]["test"] for r in rows]
        spent = statistics.median(r["variants"][name]["seconds"] for r in rows)
        cells = " | ".join(f"{t:.4f}" for t in tests)
        lines.append(f"| {name} | {cells} | **{statistics.median(tests):.4f}** | {spent:.0f} |")
    lines += [
        "",
        "| seed | trials | winner val | re-check pick | its re-check mean | optimism_gap |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['trials']} | {r['winner_val']:.4f} | {r['recheck_pick']} | "
            f"{r['recheck_mean']:.4f} | {r['optimism_gap']:+.4f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    import ray

    parser = argparse.ArgumentParser(prog="python -m bench final")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget-min", type=float, default=10.0)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--recheck-seeds", type=int, default=2)
    parser.add_argument("--out", default=f"bench/reports/{time.strftime('%Y-%m-%d')}-final")
    parser.add_argument("overrides", nargs="*", help="sweep overrides (default: none)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    budget_s = args.budget_min * 60
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        for seed in (int(s) for s in args.seeds.split(",")):
            rows.append(
                run_seed(
                    out / f"seed-{seed}",
                    seed,
                    budget_s,
                    args.overrides,
                    args.top_k,
                    args.recheck_seeds,
                )
            )
            (out / "results.json").write_text(json.dumps(rows, indent=1))
            (out / "results.md").write_text(_markdown(rows, budget_s))
    finally:
        ray.shutdown()
    print((out / "results.md").read_text())
