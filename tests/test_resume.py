"""SIGKILL the driver mid-sweep, then `sweep resume=true`: every trial finishes, finished
trials are not retrained, the interrupted one continues from its checkpoint, and MLflow
ends with exactly one closed child run per trial."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_cli, trial_runs

pytestmark = pytest.mark.slow

TRIALS, EPOCHS = 6, 8


def _children(client):
    exp = client.get_experiment_by_name("rs")
    if exp is None:
        return []
    return [
        r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags
    ]


def test_resume_after_sigkill(tmp_path):
    sweep = str(Path(sys.executable).parent / "sweep")
    args = [
        sweep,
        "dataset=digits",
        "search_space=keras_tuner",
        f"trials={TRIALS}",
        f"max_epochs={EPOCHS}",
        "max_concurrent=2",
        "scheduler=fifo",
        "seed=0",
        "name=rs",
        "tracking.uri=sqlite:///rs.db",
        "ray.storage_path=ray",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        args, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    client = MlflowClient(f"sqlite:///{tmp_path / 'rs.db'}")
    deadline = time.monotonic() + 300
    finished, running = [], []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            try:
                kids = _children(client)
            except Exception:  # noqa: BLE001 - the database may not exist yet
                continue
            finished = [c for c in kids if c.info.status == "FINISHED"]
            running = [
                c
                for c in kids
                if c.info.status == "RUNNING"
                and len(client.get_metric_history(c.info.run_id, "val_accuracy")) >= 2
            ]
            if finished and running:
                break
        assert proc.poll() is None, "sweep ended before it could be killed"
        assert finished and running, "never saw a finished and a mid-training trial"
        before = {
            c.data.tags["trial_id"]: client.get_metric_history(c.info.run_id, "val_accuracy")
            for c in finished
        }
        interrupted = running[0].data.tags["trial_id"]
        epochs_before = len(client.get_metric_history(running[0].info.run_id, "val_accuracy"))
        proc.send_signal(signal.SIGKILL)  # the driver only
        proc.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):  # Ray's agents outlive their driver
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    resumed_at = int(time.time() * 1000)
    result = run_cli("sweep", tmp_path, "resume=true", "name=rs", "ray.storage_path=ray")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Resuming sweep 'rs'" in result.stdout

    (parent,), children = trial_runs(client, "rs")
    ids = [c.data.tags["trial_id"] for c in children]
    assert len(ids) == TRIALS and len(set(ids)) == TRIALS  # one run per trial
    assert all(c.info.status in ("FINISHED", "KILLED", "FAILED") for c in children)
    assert not [c for c in children if c.info.status == "RUNNING"]
    assert parent.info.status == "FINISHED" and "test_accuracy" in parent.data.metrics
    by_id = {c.data.tags["trial_id"]: c for c in children}
    for trial_id, history in before.items():  # finished trials were not retrained
        after = client.get_metric_history(by_id[trial_id].info.run_id, "val_accuracy")
        assert [(m.step, m.value) for m in after] == [(m.step, m.value) for m in history]
        assert max(m.timestamp for m in after) < resumed_at
    steps = [
        m.step for m in client.get_metric_history(by_id[interrupted].info.run_id, "val_accuracy")
    ]
    assert steps == list(range(1, EPOCHS + 1))  # continuous: resumed, not restarted
    assert by_id[interrupted].info.status == "FINISHED"
    # it continued from its latest checkpoint (one per epoch), not from scratch
    assert int(by_id[interrupted].data.tags["resumed_from_epoch"]) >= epochs_before - 1 >= 1
