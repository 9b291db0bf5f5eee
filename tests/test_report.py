"""The sweep report, from records alone: leaderboard order, CSV, plots, the text table."""

from __future__ import annotations

import csv
import math

import pytest

from search.report import REPORT_FILES, build_report, format_leaderboard, stored_study
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
def study(tmp_path) -> tuple[str, str]:
    """A stored Optuna study as a sweep leaves it: a log-scaled learning rate whose
    sampled values span one decade, an int and a categorical param."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="demo-1",
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )

    def objective(trial):
        lr = trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True)
        n_hidden = trial.suggest_int("n_hidden", 1, 4)
        trial.suggest_categorical("optimizer", ["adam", "sgd"])
        return 0.8 + 0.01 * n_hidden - 0.02 * abs(math.log10(lr) + 2.5)

    study.optimize(objective, n_trials=12)
    return "demo-1", storage


@pytest.fixture
def sweep(study) -> SweepRecord:
    trials = [record(i, [0.5 + 0.03 * i, 0.52 + 0.03 * i]) for i in range(8)]
    trials.append(record(8, [], status="failed"))
    trials.append(record(9, [0.99], status="pruned", optimizer="adam"))
    return SweepRecord("1", "parent", "FINISHED", {"test_accuracy": 0.91}, trials, study=study)


def test_leaderboard_ranks_by_best_val_accuracy_failed_last(sweep):
    rows = leaderboard(sweep.trials)
    assert [r["trial"] for r in rows[:3]] == ["trial-9", "trial-7", "trial-6"]
    assert rows[-1]["trial"] == "trial-8" and math.isnan(rows[-1]["best_val_accuracy"])
    assert [r["rank"] for r in rows] == list(range(1, 11))
    assert rows[0]["param.optimizer"] == "adam" and rows[1]["param.optimizer"] == ""


def test_the_report_reads_the_stored_study_with_its_declared_distributions(sweep):
    """A log-scaled param stays log though its values span one decade (a study rebuilt
    from the values would have guessed a linear axis)."""
    study, why_not = stored_study(sweep)
    assert why_not is None and len(study.trials) == 12
    lr = study.trials[0].distributions["learning_rate"]
    assert lr.log and (lr.low, lr.high) == (1e-3, 1e-2)
    values = [t.params["learning_rate"] for t in study.trials]
    assert max(values) / min(values) < 100


def test_a_sweep_without_a_stored_study_says_so(sweep, tmp_path):
    sweep.study = None
    notes = build_report(sweep, tmp_path)
    assert len(notes) == 1 and "no stored Optuna study" in notes[0]
    assert (tmp_path / "leaderboard.csv").exists() and (tmp_path / "learning_curves.png").exists()


def test_build_report_writes_every_file(sweep, tmp_path):
    notes = build_report(sweep, tmp_path)
    assert notes == []
    for name in REPORT_FILES:
        assert (tmp_path / name).stat().st_size > 500, name
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").open()))
    assert len(rows) == 10 and rows[0]["trial"] == "trial-9"


def test_the_interactive_report_is_one_self_contained_page(sweep, tmp_path):
    """report.html opens offline: Plotly's JavaScript is embedded once (not a CDN
    script), and it holds both interactive figures."""
    import re

    from plotly.offline import get_plotlyjs

    assert build_report(sweep, tmp_path) == []
    assert not list(tmp_path.glob("*.html"))[1:], "one HTML page, not one per figure"
    page = (tmp_path / "report.html").read_text()
    js = get_plotlyjs()
    assert page.count(js) == 1, "Plotly's code, embedded once"
    ours = page.replace(js, "")  # the page around Plotly's own code
    assert not re.search(r"<(script|link)[^>]*\b(src|href)=", ours), "nothing is fetched"
    assert "cdn" not in ours.lower()
    assert page.count('class="plotly-graph-div"') == 2
    assert len(js) < len(page) < len(js) + 1_000_000


def test_report_of_a_single_trial_says_what_it_could_not_draw(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'one.db'}"
    optuna.create_study(study_name="one", storage=storage).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=1
    )
    one = SweepRecord("1", "p", "FINISHED", {}, [record(0, [0.7])], study=("one", storage))
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
    assert lines[3].split()[:5] == ["1", "trial-9", "pruned", "1", "0.9900"]
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


def test_a_study_recorded_without_its_password_is_a_note_not_a_connection(tmp_path):
    """MLflow holds the study's URL masked: the report says so instead of knocking on
    the database with `***` (the final phase passes the real URL)."""
    from search.report import stored_study

    url = "postgresql://sweep:***@127.0.0.1:9/optuna"
    masked = SweepRecord("1", "p", "FINISHED", {}, [record(0, [0.7])], study=("s", url))
    study, why = stored_study(masked)
    assert study is None and "recorded without its credentials" in why and url in why
