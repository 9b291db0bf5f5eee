"""The learning-rate finder on Fashion-MNIST (a small subset): MLflow holds its curve,
plot and suggestion; the suggestion trains without diverging; a space takes its range."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_cli, trial_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finder(tmp_path_factory):
    work = tmp_path_factory.mktemp("lrfind")
    proc = run_cli(
        "sweep-lr-find",
        work,
        "dataset=fashion_mnist",
        "dataset.max_per_class=200",
        "name=lrf",
        "tracking.uri=sqlite:///lrf.db",
        "lr_find.iterations=300",
        "++lr_find.params.optimizer=sgd",
        "++lr_find.params.n_hidden=2",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{work / 'lrf.db'}")
    exp = client.get_experiment_by_name("lrf")
    (run,) = client.search_runs([exp.experiment_id], "tags.`sweep.role` = 'lr_find'")
    return work, client, run, proc.stdout


def test_curve_plot_and_suggestion_are_in_mlflow(finder):
    _, client, run, stdout = finder
    m = run.data.metrics
    assert run.info.status == "FINISHED"
    assert 1e-5 < m["suggested_lr"] < 10 and m["suggested_lr"] == pytest.approx(
        m["turning_lr"] / 10
    )
    lrs = [x.value for x in client.get_metric_history(run.info.run_id, "lr_find_lr")]
    losses = client.get_metric_history(run.info.run_id, "lr_find_loss")
    assert len(lrs) == len(losses) >= 50
    assert lrs[0] == pytest.approx(1e-5) and all(b > a for a, b in zip(lrs, lrs[1:], strict=False))
    growth = (10 / 1e-5) ** (1 / 300)
    assert lrs[1] / lrs[0] == pytest.approx(growth, rel=1e-4)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"lr_finder.png", "lr_finder.json"} <= artifacts
    assert run.data.params["optimizer"] == "sgd"
    assert "suggested lr" in stdout


def test_suggestion_trains_three_epochs_without_divergence(finder):
    from trainables.data import load_dataset
    from trainables.task import Objective
    from trainables.train import train

    _, _, run, _ = finder
    lr = run.data.metrics["suggested_lr"]
    data = load_dataset({"name": "fashion_mnist", "max_per_class": 200}, seed=0)
    losses = []
    train(
        {"optimizer": "sgd", "n_hidden": 2, "learning_rate": lr},
        data,
        max_epochs=3,
        on_epoch_end=lambda e, m, model, last: losses.append(m["loss"]),
        objective=Objective("val_accuracy", "max"),
    )
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


@pytest.mark.usefixtures("shared_ray")
def test_a_space_takes_its_learning_rate_range_from_the_finder(finder):
    """In-process (the finder above is the command line): the sweep reads the
    suggestion from MLflow and samples the rate from its multiples."""
    from dnn_sweep import run_sweep

    work, client, run, _ = finder
    lr = run.data.metrics["suggested_lr"]
    run_sweep(
        [
            "dataset=fashion_mnist",
            "dataset.max_per_class=50",
            "search_space=keras_tuner_lr_find",
            "trials=2",
            "max_epochs=1",
            "name=lrf",
            f"tracking.uri=sqlite:///{work / 'lrf.db'}",
            f"ray.storage_path={work / 'ray_results'}",
        ],
        echo=lambda line: None,
    )
    _, children = trial_runs(client, "lrf")
    assert len(children) == 2
    for c in children:
        assert lr * 0.1 * 0.999 <= float(c.data.params["learning_rate"]) <= lr * 3 * 1.001
