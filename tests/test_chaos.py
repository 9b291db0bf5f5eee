"""Chaos: one sweep SIGKILLed at several random moments (the driver, and a trial's worker
process), resumed each time until done; before the first resume, storage loses the
checkpoint an unfinished trial was to resume from. Every trial ends exactly once with its whole
learning curve (interrupted ones continue from a checkpoint), no MLflow run is left
RUNNING, no child run is doubled, one model version is registered, and it is the one
the recorded histories say is best; resuming the finished sweep changes nothing."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import trial_runs

pytestmark = pytest.mark.slow

TRIALS, EPOCHS = 6, 6
ARGS = [
    "dataset=digits",
    "search_space=keras_tuner",
    f"trials={TRIALS}",
    f"max_epochs={EPOCHS}",
    "max_concurrent=2",
    "scheduler=fifo",
    "seed=0",
    "name=chaos",
    "tracking.uri=sqlite:///chaos.db",
    "ray.storage_path=ray",
]


def _epochs(client: MlflowClient) -> int:
    """Epochs recorded so far, over every trial of the sweep."""
    try:
        _, children = trial_runs(client, "chaos")
    except Exception:  # noqa: BLE001 - no database or experiment yet
        return 0
    return sum(len(client.get_metric_history(c.info.run_id, "loss")) for c in children)


def _trial_workers(session: psutil.Process) -> list[psutil.Process]:
    """Ray worker processes running a trial (Tune's function trainable actor)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "ImplicitFunc" in cmdline and proc.pid != session.pid:
            found.append(proc)
    return found


def _start(work: Path, resume: bool) -> subprocess.Popen:
    args = ["resume=true", "name=chaos", "ray.storage_path=ray"] if resume else ARGS
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "sweep"), *args],
        cwd=work,
        stdout=open(work / f"run-{time.time():.0f}.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def _kill_after(proc: subprocess.Popen, client: MlflowClient, epochs: int, worker: bool) -> bool:
    """Wait until ``epochs`` more epochs are recorded, then SIGKILL the driver (or one
    trial worker); returns False if the sweep ended first."""
    target, deadline = _epochs(client) + epochs, time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if _epochs(client) >= target:
            break
        time.sleep(0.2)
    if proc.poll() is not None:
        return False
    if worker:
        workers = _trial_workers(psutil.Process(proc.pid))
        assert workers, "no trial worker to kill"
        workers[0].send_signal(signal.SIGKILL)
        return True
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):  # Ray's processes outlive their driver
        os.killpg(proc.pid, signal.SIGKILL)
    return True


def _lose_checkpoints(work: Path) -> bool:
    """Storage loses the checkpoint Tune's snapshot names as an unfinished trial's latest
    (read through Tune's ExperimentAnalysis); returns whether there was one to lose."""
    from ray.tune import ExperimentAnalysis

    (folder,) = work.glob("ray/chaos-*")
    for trial in ExperimentAnalysis(str(folder)).trials:
        if trial.status != "TERMINATED" and trial.checkpoint is not None:
            shutil.rmtree(trial.checkpoint.path)
            return True
    return False


def test_sweep_survives_random_kills_and_resumes(tmp_path):
    rng = random.Random(12)
    client = MlflowClient(f"sqlite:///{tmp_path / 'chaos.db'}")
    proc = _start(tmp_path, resume=False)
    kills, lost = 0, False
    # kill 1: the driver; kill 2: a worker (Tune retries that trial); kill 3: the driver
    for worker in (False, True, False):
        killed = _kill_after(proc, client, rng.randint(2, 9), worker)
        kills += killed
        if killed and not worker:
            if kills == 1:
                lost = _lose_checkpoints(tmp_path)
            proc = _start(tmp_path, resume=True)
    assert proc.wait(timeout=600) == 0, sorted(tmp_path.glob("run-*.log"))[-1].read_text()[-3000:]
    assert kills == 3, "the sweep ended before every kill"
    said = "".join(log.read_text() for log in tmp_path.glob("run-*.log"))
    assert ("was gone" in said) == lost, said[-3000:]  # mended, and said so

    (parent,), children = trial_runs(client, "chaos")
    ids = [c.data.tags["trial_id"] for c in children]
    assert len(ids) == TRIALS and len(set(ids)) == TRIALS  # no trial lost, none doubled
    failed = [c.data.tags for c in children if c.info.status != "FINISHED"]
    assert not failed, (failed, said[-6000:])
    curves = {}
    for c in children:  # every learning curve whole: each epoch once, in order
        history = client.get_metric_history(c.info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1)), c.data.tags
        curves[f"trial-{c.data.tags['trial_id']}"] = max(m.value for m in history)
    tags = [c.data.tags for c in children]
    assert any(t.get("retried") == "true" for t in tags)  # the killed worker's trial, retried
    resumed = [int(t["resumed_from_epoch"]) for t in tags if "resumed_from_epoch" in t]
    assert resumed and max(resumed) >= 1  # continued from a checkpoint, not from scratch
    assert parent.info.status == "FINISHED" and "test_accuracy" in parent.data.metrics
    best = max(curves, key=curves.get)
    assert parent.data.tags["sweep.best_trial"] == best
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(curves[best])
    versions = client.search_model_versions("name = 'chaos'")
    assert len(versions) == 1 and versions[0].run_id == parent.info.run_id
    again = subprocess.run(
        [
            str(Path(sys.executable).parent / "sweep"),
            "resume=true",
            "name=chaos",
            "ray.storage_path=ray",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and "had finished: nothing to resume" in again.stdout
    assert len(client.search_model_versions("name = 'chaos'")) == 1  # not registered twice
