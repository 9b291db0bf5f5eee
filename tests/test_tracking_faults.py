"""Tracking faults do not end a sweep (tracking/buffer.py): records queue behind a
transient error and are written, in order, once the store answers; a real MLflow server
stopped mid-sweep and started again loses no metric."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

from tracking.buffer import Buffered, transient


class Flaky:
    """A recorder stand-in whose first ``fails`` calls raise ``error``."""

    def __init__(self, fails: int, error: Exception) -> None:
        self.fails, self.error, self.done = fails, error, []

    def log_epoch(self, trial: str, step: int) -> None:
        if self.fails:
            self.fails -= 1
            raise self.error
        self.done.append((trial, step))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (MlflowException("API request failed", error_code=TEMPORARILY_UNAVAILABLE), True),
        (MlflowException("bad", error_code=INVALID_PARAMETER_VALUE), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_counts_as_transient(error, kind):
    assert transient(error) is kind


def test_records_wait_behind_a_hiccup_and_go_in_order():
    clock, target = Clock(), Flaky(3, ConnectionRefusedError(111, "refused"))
    buffered = Buffered(target, clock=clock)
    for step in (1, 2, 3):
        buffered.log_epoch("t", step)  # the first fails: all three wait
    assert target.done == [] and buffered.pending == 3 and buffered.failures == 1
    clock.now += 1.0  # the backoff passed: the next call tries again (fails: 2 s now)
    buffered.log_epoch("t", 4)
    assert buffered.pending == 4 and buffered.failures == 2
    assert buffered.flush(60.0, sleep=clock.sleep)
    assert target.done == [("t", 1), ("t", 2), ("t", 3), ("t", 4)]
    assert "ConnectionRefusedError" in buffered.last_error


def test_a_store_that_stays_down_is_reported_and_a_bad_value_raised_at_once():
    clock = Clock()
    down = Buffered(Flaky(10**6, ConnectionRefusedError(111, "refused")), clock=clock)
    down.log_epoch("t", 1)
    assert not down.flush(30.0, sleep=clock.sleep) and down.pending == 1
    bad = Buffered(Flaky(1, MlflowException("bad", error_code=INVALID_PARAMETER_VALUE)))
    with pytest.raises(MlflowException, match="bad"):
        bad.log_epoch("t", 1)


@pytest.mark.slow
def test_a_tracking_server_down_for_a_while_loses_no_metric(tmp_path, monkeypatch):
    """The sweep's callback against a real `mlflow server`: stopped after the first
    epochs, the epochs logged meanwhile queue; started again (same port and store),
    every epoch is in MLflow once, in order."""
    from types import SimpleNamespace

    from mlflow import MlflowClient

    from search.callbacks import MLflowTrialCallback, flush_records
    from tests.helpers import free_port, mlflow_server
    from tracking.recorder import SweepRecorder

    # fail fast instead of MLflow's own minutes of HTTP retries: the queue is under test
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    store, port = f"sqlite:///{tmp_path / 'server.db'}", free_port()
    trial = SimpleNamespace(trial_id="a", config={"n_hidden": 2}, last_result={})
    with mlflow_server(tmp_path, store, port=port) as url:
        recorder = SweepRecorder(url, "faults")
        recorder.start_sweep({"trials": 1}, {"sweep.name": "faults"}, "trials: 1\n")
        callback = MLflowTrialCallback(recorder)
        callback.on_trial_start(0, [], trial)
        callback.on_trial_result(0, [], trial, {"training_iteration": 1, "val_accuracy": 0.1})
    for epoch in (2, 3):  # the server is down
        callback.on_trial_result(
            0, [], trial, {"training_iteration": epoch, "val_accuracy": 0.1 * epoch}
        )
    assert callback.recorder.pending >= 1
    with mlflow_server(tmp_path, store, port=port) as url:
        flush_records(60.0)
        assert callback.recorder.pending == 0
        (run,) = [
            r
            for r in MlflowClient(url).search_runs([recorder.experiment_id])
            if r.data.tags.get("trial_id") == "a"
        ]
        history = MlflowClient(url).get_metric_history(run.info.run_id, "val_accuracy")
    assert [(m.step, round(m.value, 2)) for m in history] == [(1, 0.1), (2, 0.2), (3, 0.3)]
