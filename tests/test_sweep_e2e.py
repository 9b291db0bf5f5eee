"""End to end: the real `sweep` CLI runs a tiny sweep; MLflow holds what the README promises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ACCEPTANCE_EPOCHS as EPOCHS
from tests.conftest import ACCEPTANCE_TRIALS as TRIALS
from tests.helpers import trial_runs

pytestmark = pytest.mark.slow


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
    parents, children = trial_runs(client, "acc")
    assert len(parents) == 1
    assert len(client.search_runs([exp.experiment_id], max_results=1000)) == 1 + len(children)
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
            assert status == "pruned" and c.info.status == "KILLED"
            assert epochs < EPOCHS  # ASHA cut it
    # ASHA with reduction factor 3 over 3 epochs must cut at least one of 6 trials
    assert any(c.data.tags["trial_status"] == "pruned" for c in children)


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
    assert "best.n_hidden" in parent.data.tags
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "config.yaml" in artifacts


def test_parent_has_the_system_metrics_of_the_sweep(client, runs):
    parent, _ = runs
    cpu = client.get_metric_history(parent.info.run_id, "system/cpu_utilization_percentage")
    assert cpu and all(0 <= m.value <= 100 for m in cpu)
    steps = [m.step for m in cpu]  # seconds since the sweep began
    assert steps == sorted(steps)
    assert steps[-1] <= (parent.info.end_time - parent.info.start_time) / 1000
    assert parent.data.metrics["system/system_memory_usage_megabytes"] > 0


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


def test_mlflow3_logged_model_aliases_dataset_and_source(client, runs, finished_sweep):
    """The model is a LoggedModel of the parent run, its version carries @champion and
    @latest-sweep (the first version of the name), and the parent records its data
    (three splits with digests) and where it came from."""
    import mlflow

    work, _ = finished_sweep
    parent, _ = runs
    mlflow.set_tracking_uri(f"sqlite:///{work / 'acc.db'}")
    (logged,) = mlflow.search_logged_models(
        experiment_ids=[parent.info.experiment_id], output_format="list"
    )
    assert logged.source_run_id == parent.info.run_id and logged.status.to_int() == 2
    assert [o.model_id for o in client.get_run(parent.info.run_id).outputs.model_outputs] == [
        logged.model_id
    ]
    champion = client.get_model_version_by_alias("acc", "champion")
    latest = client.get_model_version_by_alias("acc", "latest-sweep")
    assert str(champion.version) == str(latest.version) == "1"
    assert champion.tags["logged_model_id"] == logged.model_id
    assert champion.tags["test.metric"] == "accuracy" and champion.tags["test.mode"] == "max"
    assert float(champion.tags["test.value"]) == pytest.approx(parent.data.metrics["test_accuracy"])
    loaded = mlflow.pyfunc.load_model("models:/acc@champion")
    assert np.asarray(loaded.predict(np.zeros((2, 64), "float32"))).shape == (2, 10)
    inputs = client.get_run(parent.info.run_id).inputs.dataset_inputs
    splits = {i.tags[0].value: i.dataset for i in inputs}
    assert sorted(splits) == ["test", "train", "val"]
    assert {d.name for d in splits.values()} == {"digits"}
    assert champion.tags["test.digest"] == splits["test"].digest
    assert parent.data.tags["mlflow.source.name"] == "sweep"
    assert parent.data.tags["mlflow.source.type"] == "LOCAL"


def test_parent_holds_the_report(client, runs, tmp_path):
    """Plots and the leaderboard CSV (issue 6) are artifacts of the parent run."""
    import csv

    parent, children = runs
    files = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    from search.report import REPORT_FILES

    assert set(REPORT_FILES) <= {Path(f).name for f in files}, files
    local = Path(client.download_artifacts(parent.info.run_id, "report", str(tmp_path)))
    for png in local.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    page = (local / "report.html").read_text()
    assert "plotly" in page.lower() and '<script src="http' not in page
    rows = list(csv.DictReader((local / "leaderboard.csv").open()))
    assert len(rows) == TRIALS
    assert {r["run_id"] for r in rows} == {c.info.run_id for c in children}
    best = [float(r["best_val_accuracy"]) for r in rows]
    assert best == sorted(best, reverse=True)
    assert best[0] == pytest.approx(parent.data.metrics["best_val_accuracy"])
    assert {"param.n_hidden", "param.learning_rate", "status", "epochs"} <= set(rows[0])


def test_sweep_report_prints_the_leaderboard(finished_sweep, runs, tmp_path):
    from tests.helpers import run_cli

    work, _ = finished_sweep
    parent, children = runs
    proc = run_cli(
        "sweep-report",
        work,
        "acc",
        "--tracking-uri",
        "sqlite:///acc.db",
        "--top",
        "3",
        "--csv",
        str(tmp_path / "all.csv"),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Sweep 'acc'") and f"{TRIALS} trials" in lines[0]
    assert "fixed: " in proc.stdout and "activation=relu" in proc.stdout
    header = next(i for i, ln in enumerate(lines) if ln.startswith("rank"))
    assert {"n_hidden", "learning_rate", "optimizer"} <= set(lines[header].split())
    table = lines[header + 1 : header + 4]
    assert [ln.split()[0] for ln in table] == ["1", "2", "3"]
    best = parent.data.metrics["best_val_accuracy"]
    assert f"{best:.4f}" in table[0]
    assert f"{TRIALS - 3} more" in proc.stdout
    assert len((tmp_path / "all.csv").read_text().splitlines()) == TRIALS + 1

    missing = run_cli("sweep-report", work, "no-such-sweep", "--tracking-uri", "sqlite:///acc.db")
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("sweep-report: error: name=no-such-sweep")
    assert "acc" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_tensorboard_logs_per_trial(finished_sweep, runs):
    """tensorboard.enabled=true: one TensorBoard folder per trial, named on its run."""
    work, _ = finished_sweep
    _, children = runs
    root = work / "tensorboard" / "acc"
    for c in children:
        folder = Path(c.data.tags["tensorboard_dir"])
        assert folder.parent == root and folder.name == f"trial-{c.data.tags['trial_id']}"
        assert list((folder / "train").glob("events.out.tfevents.*"))
        assert list((folder / "validation").glob("events.out.tfevents.*"))
