"""Several objectives: the config, the Pareto front, the registered model's rule, and a
multi-objective digits sweep (NSGA-II) with its front on the parent run."""

from __future__ import annotations

import csv
import os
import re

import pytest
from mlflow.tracking import MlflowClient

from search.pareto import choose, front
from tests.helpers import check_inputs, trial_runs

TWO = (("val_accuracy", "max"), ("n_params", "min"))


def _row(trial, acc, size):
    return {"trial_id": trial, "val_accuracy": acc, "n_params": size, "params": {}}


def test_front_keeps_exactly_the_non_dominated_trials():
    rows = [_row("a", 0.90, 100), _row("b", 0.95, 1000), _row("c", 0.89, 500), _row("d", 0.95, 900)]
    assert front(rows, TWO) == [0, 3]  # c loses to a on both; b to d on size


def test_the_registered_trial_follows_the_documented_rule():
    rows = [_row("big", 0.950, 9000), _row("mid", 0.947, 800), _row("small", 0.930, 50)]
    assert choose(rows, TWO, tolerance=0.005)["trial_id"] == "mid"  # within 0.5 pt, smaller
    assert choose(rows, TWO, tolerance=0.0)["trial_id"] == "big"
    assert choose(rows, TWO, tolerance=0.05)["trial_id"] == "small"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("objectives=[val_accuracy:max]", "objectives=.*two or more METRIC:MODE"),
        ("objectives=[val_accuracy:max,size:min]", "objectives: 'size:min': must be METRIC:min"),
        ("objectives=[n_params:min,val_accuracy:max]", "the first objective .* validation"),
        ("objectives=[val_accuracy:max,val_rmse:min]", "objectives: objective.metric=val_rmse"),
        ("objectives=[val_accuracy:max,n_params:min] searcher=cmaes", "CMA-ES optimizes one"),
        ("objectives=[val_accuracy:max,n_params:min] ensemble.size=3", "ensemble.size=3"),
        ("objectives=[val_accuracy:max,n_params:min] pareto.tolerance=-1", "pareto.tolerance"),
    ],
)
def test_bad_objectives_exit_2_naming_the_key(override, message):
    code, lines = check_inputs("dataset=digits", *override.split())
    assert code == 2 and len(lines) == 1, lines
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.slow
@pytest.mark.usefixtures("shared_ray")
def test_a_multi_objective_sweep_logs_its_front_and_registers_by_the_rule(tmp_path):
    import mlflow

    from dnn_sweep import run_sweep

    uri = f"sqlite:///{tmp_path / 'mo.db'}"
    run_sweep(
        [
            "dataset=digits",
            "search_space=keras_tuner",
            "search_space.params.optimizer=adam",  # every trial learns: a real trade-off
            "trials=8",
            "max_epochs=3",
            "max_concurrent=2",
            "scheduler=fifo",
            "searcher=nsga2",
            "objectives=[val_accuracy:max,n_params:min]",
            "name=mo",
            f"tracking.uri={uri}",
            f"ray.storage_path={tmp_path / 'ray_results'}",
        ],
        echo=lambda line: None,
    )
    client = MlflowClient(uri)
    (parent,), children = trial_runs(client, "mo")
    folder = mlflow.artifacts.download_artifacts(
        run_id=parent.info.run_id, artifact_path="pareto", tracking_uri=uri
    )
    with open(f"{folder}/front.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    points = [_row(r["trial"], float(r["val_accuracy"]), float(r["n_params"])) for r in rows]
    on_front = [r["pareto_optimal"] == "True" for r in rows]
    assert on_front == [i in front(points, TWO) for i in range(8)]
    assert sum(on_front) >= 3
    assert parent.data.metrics["pareto_front_size"] == sum(on_front)
    (registered,) = [r["trial"] for r in rows if r["registered"] == "True"]
    assert registered == choose(points, TWO, 0.005)["trial_id"]
    assert parent.data.tags["sweep.best_trial"] == registered
    assert os.path.getsize(f"{folder}/front.png") > 5000
    sizes = {c.data.metrics.get("n_params") for c in children}
    assert len(sizes) > 1 and None not in sizes  # every trial measured its size
