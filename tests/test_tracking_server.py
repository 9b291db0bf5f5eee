"""Tracking-server mode: a real `mlflow server` on loopback (started and stopped here)
gets the same records as the embedded SQLite default."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_cli, trial_runs

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    mlflow = str(Path(sys.executable).parent / "mlflow")
    proc = subprocess.Popen(
        [
            mlflow,
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        stdout=open(tmp_path / "server.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not come up"
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_sweep_against_a_tracking_server(tmp_path, mlflow_server):
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
        f"tracking.uri={mlflow_server}",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
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
