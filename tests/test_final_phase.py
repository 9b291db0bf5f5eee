"""The final phase's training: re-checks on fresh seeds (the pick, the table, the
optimism gap), refits on training + validation data, and the time the search leaves
them inside ``time_budget_s``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from search.budget import FinalReserve, FinalWork
from search.final_model import Ranked
from search.recheck import (
    fresh_seeds,
    optimism_gap,
    pick,
    recheck_jobs,
    refit_epochs,
    summarize,
    table,
)
from search.retrain import Done
from tests.helpers import trial_runs
from trainables.task import Objective

ACC = Objective("val_accuracy", "max")


def _ranked(trial_id: str, value: float, epoch: int = 3) -> Ranked:
    return Ranked(trial_id, {"n_hidden": 1}, value, epoch, checkpoint=None)


def _done(jobs, values: dict[tuple[str, int], float], epochs: int = 4):
    out = []
    for job in jobs:
        v = values[(job.trial_id, job.seed)]
        error = "DivergedError: loss nan" if math.isnan(v) else None
        out.append(Done(job, best=v, best_epoch=0 if error else epochs, error=error))
    return out[::-1]  # in the order they ended, not the order they were asked for


def test_recheck_picks_the_config_not_the_lucky_draw():
    """The search's winner (0.95, a lucky draw) re-checks at 0.90; the runner-up
    re-checks at 0.93: it is picked, and the gap says how optimistic the search was."""
    top = [_ranked("a", 0.95), _ranked("b", 0.94), _ranked("c", 0.93)]
    seeds = fresh_seeds(7, 2)
    assert seeds == [8, 9]  # every trial trained with seed 7
    jobs = recheck_jobs(top, seeds, max_epochs=10)
    assert [(j.trial_id, j.seed) for j in jobs[:3]] == [("a", 8), ("b", 8), ("c", 8)]
    values = {("a", 8): 0.89, ("a", 9): 0.91, ("b", 8): 0.93, ("b", 9): 0.93}
    values |= {("c", 8): 0.99, ("c", 9): float("nan")}  # diverged on one seed
    checked = summarize(top, _done(jobs, values))
    assert [c.values for c in checked[:2]] == [(0.89, 0.91), (0.93, 0.93)]
    assert checked[2].values[0] == 0.99 and math.isnan(checked[2].values[1])
    chosen = pick(checked, ACC)
    assert chosen.trial.trial_id == "b"  # c's mean is higher, but it diverged once
    assert optimism_gap(checked[0], ACC) == pytest.approx(0.05)
    rows = table(checked, chosen, ACC)
    assert [r["picked"] for r in rows] == [False, True, False]
    assert rows[2]["failed"] == 1 and rows[0]["recheck_mean_val_accuracy"] == pytest.approx(0.9)


def test_optimism_gap_is_positive_when_a_loss_was_optimistic():
    loss = Objective("val_loss", "min")
    top = [_ranked("a", 0.30)]
    jobs = recheck_jobs(top, [1, 2], 5)
    checked = summarize(top, _done(jobs, {("a", 1): 0.34, ("a", 2): 0.36}))
    assert optimism_gap(checked[0], loss) == pytest.approx(0.05)
    assert pick(checked, loss) is checked[0]


def test_refit_trains_for_the_median_best_epoch():
    trial = _ranked("a", 0.9, epoch=3)
    jobs = recheck_jobs([trial], [1, 2], 10)
    checked = summarize([trial], _done(jobs, {("a", 1): 0.9, ("a", 2): 0.9}, epochs=7))
    assert refit_epochs(trial, checked[0]) == 7  # median of 3, 7, 7
    assert refit_epochs(trial, None) == 3


def test_the_search_leaves_the_final_phase_its_estimated_time(monkeypatch):
    """Two trials at 10 s an epoch: re-checking the best 2 on 2 seeds (10 epochs each,
    2 at a time) takes ~200 s, refitting the best ~10 s x 4 epochs x 1.2: the search
    stops when 248 s are left, not before."""
    import search.budget as budget

    clock = [1000.0]
    monkeypatch.setattr(budget.time, "time", lambda: clock[0])
    work = FinalWork(2, 2, 1, max_epochs=10, at_once=2, refit_scale=1.2)
    stopper = FinalReserve(600.0, work, ACC)
    assert not stopper.stop_all()  # nothing measured yet
    for epoch in range(1, 5):
        stopper("t1", {"val_accuracy": 0.8 + epoch / 100, "epoch_seconds": 10.0, "epoch": epoch})
    stopper("t2", {"val_accuracy": 0.5, "epoch_seconds": 10.0, "epoch": 1})
    assert stopper.reserve() == pytest.approx(200 + 48)
    clock[0] += 600 - 249
    assert not stopper.stop_all()
    clock[0] += 2
    assert stopper.stop_all()


@pytest.mark.slow
def test_refit_trains_on_training_and_validation_rows():
    """A refit sees every training and validation row each epoch (the optimizer's step
    count says so) and no validation split."""
    from trainables.data import from_arrays, load_dataset
    from trainables.train import refit

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(400, 8)).astype("float32"), rng.integers(0, 3, 400)
    loaded = from_arrays("toy", x, y, 0, val_size=100, test_size=50)
    data = load_dataset({}, 0, "auto", loaded)
    sizes = data.sizes()
    params = {"n_hidden": 1, "n_neurons": 8, "batch_size": 32, "learning_rate": 1e-2}
    model, losses = refit(params, data, epochs=3, max_epochs=10, seed=1)
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    steps = math.ceil((sizes["train"] + sizes["val"]) / 32) * 3
    assert int(model.optimizer.iterations.numpy()) == steps


@pytest.mark.slow
@pytest.mark.usefixtures("shared_ray")
def test_a_sweep_rechecks_and_registers_a_refit(tmp_path):
    """Digits, 4 trials: the best 2 configs re-checked on 2 seeds, the chosen one refit;
    each job a run nested under its trial's run, the table and gap on the parent."""
    from dnn_sweep import run_sweep
    from search.report import format_leaderboard
    from tracking.runs import load_sweep

    uri = f"sqlite:///{tmp_path / 'final.db'}"
    summary = run_sweep(
        [
            "dataset=digits",
            "search_space=keras_tuner",
            "trials=4",
            "max_epochs=2",
            "max_concurrent=2",
            "name=final",
            f"tracking.uri={uri}",
            f"ray.storage_path={tmp_path / 'ray_results'}",
            "recheck.top_k=2",
            "recheck.seeds=2",
            "final.refit=true",
        ],
        echo=lambda line: None,
    )
    client = MlflowClient(uri)
    (parent,), trials = trial_runs(client, "final")
    assert len(trials) == 4
    runs = client.search_runs([parent.info.experiment_id], max_results=100)
    by_id = {t.info.run_id: t for t in trials}
    jobs = [r for r in runs if r.data.tags.get("phase") in ("recheck", "refit")]
    # one refit per member of the registered model (an ensemble by default)
    members = parent.data.tags.get("ensemble.members", "one").count(",") + 1
    assert sorted(r.data.tags["phase"] for r in jobs) == ["recheck"] * 4 + ["refit"] * members
    for run in jobs:  # nested under the trial it re-checks or refits
        trial = by_id[run.data.tags["mlflow.parentRunId"]]
        assert trial.data.tags["trial_id"] == run.data.tags["of_trial"]
    sweep = load_sweep(uri, "final")  # the one reader of a sweep's records
    rows = sweep.recheck
    assert len(rows) == 2 and sum(r["picked"] == "True" for r in rows) == 1
    # sweep-report shows the table under the leaderboard
    shown = format_leaderboard(sweep, "final", 10)
    assert "re-check on fresh seeds" in shown and "optimism_gap" in shown
    assert all(r["trial"] in shown.split("re-check")[1] for r in rows)
    winner = rows[0]
    gap = float(winner["search_val_accuracy"]) - float(winner["recheck_mean_val_accuracy"])
    assert parent.data.metrics["optimism_gap"] == pytest.approx(gap)
    picked = next(r for r in rows if r["picked"] == "True")
    assert summary.best_trial == picked["trial"] == parent.data.tags["recheck.pick"]
    epochs = parent.data.tags["refit.epochs"].split(",")
    assert len(epochs) == members and all(e.isdigit() and 1 <= int(e) <= 2 for e in epochs)
    assert "best_trial_test_accuracy" in parent.data.metrics
    assert parent.data.metrics["final_phase_seconds"] > 0
