"""End to end: the real `sweep` CLI runs a tiny sweep; MLflow holds what the README promises."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TRIALS, EPOCHS = 6, 3


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """Run the issue's acceptance command once; every test below reads its records."""
    import os
    import sys

    work = tmp_path_factory.mktemp("sweep")
    sweep = str(Path(sys.executable).parent / "sweep")
    cmd = [
        sweep,
        "dataset=digits",
        "search_space=keras_tuner",
        f"trials={TRIALS}",
        f"max_epochs={EPOCHS}",
        "max_concurrent=2",
        "seed=0",
        "name=acc",
        "tracking.uri=sqlite:///acc.db",
        "ray.storage_path=ray_results",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work, proc.stdout


@pytest.fixture(scope="module")
def client(finished_sweep):
    from mlflow.tracking import MlflowClient

    work, _ = finished_sweep
    return MlflowClient(tracking_uri=f"sqlite:///{work / 'acc.db'}")


@pytest.fixture(scope="module")
def runs(client):
    exp = client.get_experiment_by_name("acc")
    assert exp is not None
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"
    all_runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    children = [r for r in all_runs if "mlflow.parentRunId" in r.data.tags]
    return parents[0], children


def test_one_child_run_per_trial_nested_under_parent(runs):
    parent, children = runs
    assert len(children) == TRIALS
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert len({c.data.tags["trial_id"] for c in children}) == TRIALS
    # TensorFlow in each trial used as many threads as the trial had CPUs (trial.cpus=1)
    assert {c.data.tags["tf_threads"] for c in children} == {"1"}
    assert parent.info.status == "FINISHED"


def test_child_params_inside_declared_ranges(runs):
    _, children = runs
    for c in children:
        p = c.data.params
        assert 0 <= int(p["n_hidden"]) <= 8
        assert 16 <= int(p["n_neurons"]) <= 256
        assert 1e-4 <= float(p["learning_rate"]) <= 1e-2
        assert p["optimizer"] in ("sgd", "adam")


def test_learning_curve_has_one_point_per_epoch(client, runs):
    _, children = runs
    for c in children:
        history = client.get_metric_history(c.info.run_id, "val_accuracy")
        steps = [m.step for m in history]
        assert steps == list(range(1, len(steps) + 1))
        assert 1 <= len(steps) <= EPOCHS
        assert int(c.data.tags["epochs"]) == len(steps)
        for name in ("loss", "accuracy", "val_loss", "lr"):
            assert len(client.get_metric_history(c.info.run_id, name)) == len(steps)


def test_trial_status_tells_outcomes_apart(runs):
    _, children = runs
    for c in children:
        status = c.data.tags["trial_status"]
        epochs = int(c.data.tags["epochs"])
        if status == "completed":
            assert c.info.status == "FINISHED"
            assert c.data.tags["stop_reason"] in ("max_epochs", "patience")
            if c.data.tags["stop_reason"] == "max_epochs":
                assert epochs == EPOCHS
        else:
            assert status == "stopped_early" and c.info.status == "KILLED"
            assert epochs < EPOCHS  # ASHA cut it
    # ASHA with reduction factor 3 over 3 epochs must cut at least one of 6 trials
    assert any(c.data.tags["trial_status"] == "stopped_early" for c in children)


def test_parent_has_results_and_config(client, runs):
    parent, children = runs
    m = parent.data.metrics
    assert 0.0 <= m["test_accuracy"] <= 1.0
    best_child = max(
        max(x.value for x in client.get_metric_history(c.info.run_id, "val_accuracy"))
        for c in children
    )
    assert m["best_val_accuracy"] == pytest.approx(best_child)
    assert parent.data.params["searcher"] == "tpe"
    assert parent.data.params["scheduler"] == "asha"
    assert parent.data.params["seed"] == "0"
    assert "best.n_hidden" in parent.data.params
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "config.yaml" in artifacts


def test_registered_savedmodel_predicts_class_probabilities(client, finished_sweep):
    import mlflow
    import tensorflow as tf
    from sklearn.datasets import load_digits

    work, stdout = finished_sweep
    versions = client.search_model_versions("name='acc'")
    assert len(versions) == 1
    mlflow.set_tracking_uri(f"sqlite:///{work / 'acc.db'}")
    local = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/acc/{versions[0].version}", dst_path=str(work / "model")
        )
    )
    saved = [p.parent for p in local.rglob("saved_model.pb")]
    assert len(saved) == 1
    loaded = tf.saved_model.load(str(saved[0]))
    x = load_digits().data[:7].astype("float32")
    probs = loaded.signatures["serving_default"](tf.constant(x))
    probs = next(iter(probs.values())).numpy()
    assert probs.shape == (7, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert "models:/acc/1" in stdout and "test_accuracy" in stdout
    served = mlflow.pyfunc.load_model(f"models:/acc/{versions[0].version}")
    assert np.asarray(served.predict(x[:3])).shape == (3, 10)
