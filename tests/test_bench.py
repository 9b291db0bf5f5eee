"""Smoke run of the benchmark's short mode: every part runs and reports (no timing
assertions: the targets live in bench/, measured on a quiet machine)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _result(system: str, seed: int, val: float, **extra) -> dict:
    return {
        "system": system,
        "seed": seed,
        "points": [(10.0, val - 0.01), (200.0, val)],
        "best_at_half": val - 0.01,
        "best_at_budget": val,
        "test_accuracy": val - 0.02,
        "trials_started": 3,
        "epochs": 9,
        "peak_rss_mb": 900.0,
        **extra,
    }


def test_merge_reports_medians_over_runs_and_refuses_other_budgets(tmp_path):
    from bench.__main__ import main

    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps([_result("kt_random", 0, 0.80), _result("dnn_sweep", 0, 0.70)]))
    new.write_text(
        json.dumps(
            [
                _result("kt_random", 1, 0.84, budget_seconds=600.0),
                _result("kt_random", 2, 0.90, budget_seconds=600.0),
                # replaces the old seed-0 dnn_sweep entry
                _result("dnn_sweep", 0, 0.88, budget_seconds=600.0, best_trial_test_accuracy=0.8),
            ]
        )
    )
    out = tmp_path / "merged"
    main(["merge", str(old), str(new), "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert [(r["system"], r["seed"]) for r in results] == [
        ("dnn_sweep", 0),
        ("kt_random", 0),
        ("kt_random", 1),
        ("kt_random", 2),
    ]
    table = (out / "results.md").read_text()
    # kt_random: median of 0.80, 0.84, 0.90 at the budget; its best trial is its model
    # runs from before the peers' refits: no own-workflow column value
    assert "| kt_random | 0.8300 | 0.8400 | — | 0.8200 | 0.8200 |" in table
    assert "| dnn_sweep | 0.8700 | 0.8800 | — | 0.8600 | 0.8000 |" in table
    assert "seed 2" in table and (out / "anytime.png").stat().st_size > 1000
    other = tmp_path / "other.json"
    other.write_text(json.dumps([_result("optuna", 0, 0.8, budget_seconds=120.0)]))
    with pytest.raises(SystemExit, match="120 s budget, not 600 s"):
        main(["merge", str(other), "--out", str(out)])


def _kt_trial(folder, index: int, values: dict, best: float | None, status="COMPLETED"):
    """A trial.json as Keras Tuner writes it: status, hyperparameters, best epoch."""
    path = folder / "kt" / "kt_hyperband" / f"trial_{index:04d}" / "trial.json"
    path.parent.mkdir(parents=True)
    observations = [] if best is None else [{"value": [best], "step": 1}]
    metrics = {"val_accuracy": {"direction": "max", "observations": observations}}
    record = {"hyperparameters": {"values": values}, "metrics": {"metrics": metrics}}
    path.write_text(json.dumps(record | {"status": status}))


def test_keras_tuner_records_give_epochs_trials_and_the_trial_table(tmp_path):
    from bench.peers import kt_epochs
    from bench.trials import keras_tuner_trials, summary

    _kt_trial(tmp_path, 0, {"tuner/epochs": 2, "tuner/initial_epoch": 0}, 0.85)
    _kt_trial(tmp_path, 1, {"tuner/epochs": 4, "tuner/initial_epoch": 2}, 0.88)
    _kt_trial(tmp_path, 2, {"n_hidden": 5}, None, status="RUNNING")  # cut by the budget
    _kt_trial(tmp_path, 3, {"n_hidden": 5}, 0.70)  # a RandomSearch-style trial: max_epochs
    assert kt_epochs(tmp_path, 10) == {"trials": 3, "epochs": 14, "best_val_accuracy": 0.88}
    log = [
        {"t": 10.0, "trial": "t1", "epoch": 1, "val_accuracy": 0.80},
        {"t": 20.0, "trial": "t1", "epoch": 2, "val_accuracy": 0.85},
        {"t": 290.0, "trial": "t2", "epoch": 3, "val_accuracy": 0.86},
        {"t": 310.0, "trial": "t2", "epoch": 4, "val_accuracy": 0.88},
    ]
    (tmp_path / "epochs.jsonl").write_text("\n".join(json.dumps(r) for r in log))
    trials = keras_tuner_trials(tmp_path)
    assert [(t.name, t.epochs, t.best, t.status) for t in trials] == [
        ("t1", 2, 0.85, "epochs 1-2"),
        ("t2", 2, 0.88, "epochs 3-4"),
    ]
    assert trials[1].params["tuner/initial_epoch"] == 2
    # at half the budget the continuation had started but its best came later
    half = summary(trials, 600.0)["at_half"]
    assert half == {"trials_started": 2, "trials_past_epoch_9": 0, "best": 0.86}


@pytest.mark.slow
def test_bench_short_mode_runs_and_reports(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--short",
            "--budget-min",
            # the budget includes Ray's and TensorFlow's start, and the trial workers' own:
            # 27 s on a busy CI, and 45 s beside another test (make test runs two at once),
            # each ended before any trial's first epoch; room for that and a few epochs
            "1.0",
            "--systems",
            "dnn_sweep,kt_random",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert [r["system"] for r in results] == ["dnn_sweep", "kt_random"]
    for r in results:
        assert r["epochs"] > 0 and r["best_val_accuracy"] > 0.1, r["system"]
        assert r["peak_rss_mb"] > 50
        assert r["test_accuracy"] is not None
    for peer in results[1:]:  # refit as the seed's workflow does, then tested
        assert peer["refit_test_accuracy"] > 0.1 and peer["refit_epochs"] >= 1, peer
        assert peer["own_workflow_test_accuracy"] == peer["refit_test_accuracy"]
    ours = results[0]
    assert ours["own_workflow_test_accuracy"] == ours["test_accuracy"]
    assert 0 < ours["training_efficiency"] <= ours["orchestration_efficiency"] <= 1.0
    assert ours["best_trial_test_accuracy"] is not None and ours["ensemble_members"] >= 1
    assert "| dnn_sweep |" in (out / "results.md").read_text()
    assert (out / "anytime.png").stat().st_size > 1000
