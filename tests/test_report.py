"""The sweep report, from records alone: leaderboard order, CSV, plots, the text table."""

from __future__ import annotations

import csv
import math

import pytest

from search.report import REPORT_FILES, build_report, format_leaderboard, rebuild_study
from tracking.runs import SweepRecord, TrialRecord, leaderboard


def record(i: int, accs: list[float], status: str = "completed", **params) -> TrialRecord:
    curves = {
        "val_accuracy": [(e + 1, a) for e, a in enumerate(accs)],
        "val_loss": [(e + 1, 1.0 - a) for e, a in enumerate(accs)],
    }
    base = {"activation": "relu", "n_hidden": str(i % 4), "learning_rate": str(10 ** -(1 + i % 4))}
    return TrialRecord(
        run_id=f"r{i}",
        name=f"trial-{i}",
        status=status,
        params={**base, **{k: str(v) for k, v in params.items()}},
        started=float(i),
        curves=curves,
    )


@pytest.fixture
def sweep() -> SweepRecord:
    trials = [record(i, [0.5 + 0.03 * i, 0.52 + 0.03 * i]) for i in range(8)]
    trials.append(record(8, [], status="failed"))
    trials.append(record(9, [0.99], status="stopped_early", optimizer="adam"))
    return SweepRecord("1", "parent", "FINISHED", {"test_accuracy": 0.91}, trials)


def test_leaderboard_ranks_by_best_val_accuracy_failed_last(sweep):
    rows = leaderboard(sweep.trials)
    assert [r["trial"] for r in rows[:3]] == ["trial-9", "trial-7", "trial-6"]
    assert rows[-1]["trial"] == "trial-8" and math.isnan(rows[-1]["best_val_accuracy"])
    assert [r["rank"] for r in rows] == list(range(1, 11))
    assert rows[0]["param.optimizer"] == "adam" and rows[1]["param.optimizer"] == ""


def test_rebuilt_study_keeps_searched_params_only(sweep):
    study = rebuild_study(sweep.trials)
    assert len(study.trials) == 9  # the failed trial has no score
    dists = study.trials[1].distributions
    assert "activation" not in dists  # one value in the whole sweep: a constant
    assert dists["learning_rate"].log  # spans three decades
    assert study.best_value == pytest.approx(0.99)


def test_build_report_writes_every_file(sweep, tmp_path):
    notes = build_report(sweep, tmp_path)
    assert notes == []
    for name in REPORT_FILES:
        assert (tmp_path / name).stat().st_size > 500, name
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").open()))
    assert len(rows) == 10 and rows[0]["trial"] == "trial-9"


def test_report_of_a_single_trial_says_what_it_could_not_draw(tmp_path):
    one = SweepRecord("1", "p", "FINISHED", {}, [record(0, [0.7])])
    notes = build_report(one, tmp_path)
    assert notes and "param_importances" in notes[0]
    assert "not drawn" in (tmp_path / "README.txt").read_text()
    assert (tmp_path / "learning_curves.png").exists()


def test_text_leaderboard(sweep):
    text = format_leaderboard(sweep, "demo", top=3)
    lines = text.splitlines()
    assert lines[0].startswith("Sweep 'demo' (parent run parent, finished): 10 trials")
    assert "1 failed" in lines[0] and "test_accuracy 0.9100" in lines[0]
    assert lines[1] == "fixed: activation=relu"
    assert lines[2].split() == [
        "rank",
        "trial",
        "status",
        "epochs",
        "best_val_accuracy",
        "learning_rate",
        "n_hidden",
        "optimizer",
    ]
    assert lines[3].split()[:5] == ["1", "trial-9", "stopped_early", "1", "0.9900"]
    assert lines[-1].startswith("... 7 more")


def test_a_minimized_objective_ranks_lowest_first():
    trials = [
        TrialRecord(
            f"r{i}",
            f"trial-{i}",
            "completed",
            {"n_hidden": str(i)},
            float(i),
            {"val_rmse": [(1, 50.0 - i), (2, 40.0 - i)], "val_loss": [(1, 1.0), (2, 0.9)]},
            objective=("val_rmse", "min"),
        )
        for i in range(4)
    ]
    rows = leaderboard(trials)
    assert [r["trial"] for r in rows] == ["trial-3", "trial-2", "trial-1", "trial-0"]
    assert rows[0]["best_val_rmse"] == 37.0 and rows[0]["epochs"] == 2
    study = rebuild_study(trials)
    assert study.direction.name == "MINIMIZE" and study.best_value == 37.0
