"""A sweep over the Table 11-3 preset on digits: conditional params only where they apply,
the schedule's learning rate (and 1cycle momentum) logged every epoch."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import trial_runs

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("shared_ray")
def test_default_dnn_sweep_on_digits(tmp_path):
    from dnn_sweep import run_sweep

    run_sweep(
        [
            "dataset=digits",
            "search_space=default_dnn",
            "trials=6",
            "max_epochs=3",
            "max_concurrent=2",
            "seed=1",
            "name=dnn",
            f"tracking.uri=sqlite:///{tmp_path / 'dnn.db'}",
            f"ray.storage_path={tmp_path / 'ray_results'}",
            "evaluation.mc_dropout_samples=5",
        ],
        echo=lambda line: None,
    )
    client = MlflowClient(f"sqlite:///{tmp_path / 'dnn.db'}")
    (parent,), children = trial_runs(client, "dnn")
    assert len(children) == 6
    for c in children:
        p = c.data.params
        assert (p["initializer"], p["activation"], p["lr_schedule"]) == (
            "he_normal",
            "elu",
            "onecycle",
        )
        assert ("bn_momentum" in p) == (p["batch_norm"] in ("before", "after"))
        assert ("momentum" in p) == (p["optimizer"] in ("momentum", "nesterov"))
        lrs = [m.value for m in client.get_metric_history(c.info.run_id, "lr")]
        epochs = int(c.data.tags["epochs"])
        assert len(lrs) == epochs
        if epochs > 1:
            assert len(set(lrs)) > 1  # 1cycle moves the rate every epoch
        moms = client.get_metric_history(c.info.run_id, "momentum")
        if p["optimizer"] in ("momentum", "nesterov"):
            assert len(moms) == epochs and all(0.85 <= m.value <= 0.95 for m in moms)
    for key in ("test_accuracy", "test_entropy", "test_mc_accuracy", "test_mc_entropy"):
        assert key in parent.data.metrics
