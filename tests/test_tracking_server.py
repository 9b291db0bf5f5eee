"""Tracking-server mode: a real `mlflow server` on loopback (started and stopped here)
gets the same records as the embedded SQLite default."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import mlflow_server, run_cli, trial_runs

pytestmark = pytest.mark.slow


@pytest.fixture
def mlflow_server_url(tmp_path):
    with mlflow_server(
        tmp_path, f"sqlite:///{tmp_path / 'server.db'}", artifacts=tmp_path / "artifacts"
    ) as url:
        yield url


URI_PASSWORD = "uri-pa55word-xyz"
ENV_TOKEN = "env-t0ken-abc123"


def test_sweep_against_a_tracking_server(tmp_path, mlflow_server_url):
    """The sweep records to the server; credentials given in the tracking URI and in the
    environment reach neither MLflow (params, tags, config artifact) nor the output."""
    mlflow_server = mlflow_server_url
    with_credentials = mlflow_server.replace("http://", f"http://alice:{URI_PASSWORD}@")
    proc = run_cli(
        "sweep",
        tmp_path,
        "dataset=digits",
        "search_space=keras_tuner",
        "trials=3",
        "max_epochs=2",
        "max_concurrent=2",
        "seed=0",
        "name=srv",
        f"tracking.uri={with_credentials}",
        env={"MY_SERVICE_TOKEN": ENV_TOKEN},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    assert URI_PASSWORD not in output and "alice:***@" in output
    client = MlflowClient(mlflow_server)
    (parent,), children = trial_runs(client, "srv")
    assert len(children) == 3
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert "test_accuracy" in parent.data.metrics
    for c in children:
        assert len(client.get_metric_history(c.info.run_id, "val_accuracy")) >= 1
    (version,) = client.search_model_versions("name='srv'")
    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    local = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/srv/{version.version}", dst_path=str(tmp_path / "dl")
        )
    )
    assert list(local.rglob("saved_model.pb"))
    assert list((tmp_path / "artifacts").rglob("saved_model.pb"))  # stored by the server
    for run in [parent, *children]:
        recorded = " ".join(
            [*run.data.params.values(), *run.data.tags.values(), *run.data.params, *run.data.tags]
        )
        assert URI_PASSWORD not in recorded and ENV_TOKEN not in recorded
    config = Path(client.download_artifacts(parent.info.run_id, "config.yaml", str(tmp_path)))
    text = config.read_text()
    assert "alice:***@" in text and URI_PASSWORD not in text
