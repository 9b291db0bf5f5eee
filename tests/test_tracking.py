"""SweepRecorder + the Tune callback, driven by fake trials against a real SQLite MLflow."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from search.callbacks import FINISHED_FLAG, RESTORED_METRICS, MLflowTrialCallback
from tracking.health import check_reachable
from tracking.recorder import SweepRecorder, TrackingError


def fake_trial(trial_id: str, config: dict, last: dict | None = None, error=None):
    return SimpleNamespace(
        trial_id=trial_id, config=config, last_result=last or {}, get_error=lambda: error
    )


@pytest.fixture
def recorder(tmp_path):
    rec = SweepRecorder(f"sqlite:///{tmp_path / 'm.db'}", "unit")
    rec.start_sweep({"trials": 3}, {"sweep.name": "unit"}, "trials: 3\n")
    return rec


def children(rec: SweepRecorder):
    client = MlflowClient(rec.tracking_uri)
    runs = client.search_runs([rec.experiment_id])
    return {r.data.tags.get("trial_id"): r for r in runs if "mlflow.parentRunId" in r.data.tags}


def test_outcomes_are_told_apart(recorder):
    cb = MLflowTrialCallback(recorder)
    done = fake_trial("a", {"n_hidden": 2})
    cut = fake_trial("b", {"n_hidden": 3})
    for t in (done, cut):
        cb.on_trial_start(0, [], t)
    for epoch in (1, 2):
        cb.on_trial_result(
            0,
            [],
            done,
            {
                "training_iteration": epoch,
                "val_accuracy": 0.5 + epoch,
                "loss": 1.0 / epoch,
                "tf_threads": 1,
            },
        )
    cb.on_trial_result(0, [], cut, {"training_iteration": 1, "val_accuracy": 0.1})
    done.last_result = {"training_iteration": 2, FINISHED_FLAG: True, "stop_reason": "max_epochs"}
    cut.last_result = {"training_iteration": 1}
    cb.on_trial_complete(0, [], done)
    cb.on_trial_complete(0, [], cut)
    never_started = fake_trial("c", {"n_hidden": 1}, error=RuntimeError("worker died"))
    cb.on_trial_error(0, [], never_started)

    runs = children(recorder)
    assert set(runs) == {"a", "b", "c"}
    a, b, c = runs["a"], runs["b"], runs["c"]
    assert (a.info.status, a.data.tags["trial_status"], a.data.tags["stop_reason"]) == (
        "FINISHED",
        "completed",
        "max_epochs",
    )
    assert (b.info.status, b.data.tags["trial_status"]) == ("KILLED", "pruned")
    assert (c.info.status, c.data.tags["trial_status"]) == ("FAILED", "failed")
    assert "worker died" in c.data.tags["error"] and c.data.params["n_hidden"] == "1"
    assert a.data.tags["tf_threads"] == "1"
    history = MlflowClient(recorder.tracking_uri).get_metric_history(a.info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [(1, 1.5), (2, 2.5)]


def test_a_resume_from_a_checkpoint_newer_than_the_records_fills_the_gap(recorder):
    """The driver died after epoch 3's checkpoint was written but before it logged epoch
    3: the first report after the resume carries epoch 3's values, logged once."""
    cb = MLflowTrialCallback(recorder)
    trial = fake_trial("g", {"n_hidden": 1})
    cb.on_trial_start(0, [], trial)
    for epoch in (1, 2):
        result = {"training_iteration": epoch, "epoch": epoch, "val_accuracy": epoch / 10}
        cb.on_trial_result(0, [], trial, result)
    resumed = {"training_iteration": 3, "epoch": 4, "val_accuracy": 0.4, "resumed_from_epoch": 3}
    for _ in (1, 2):  # the same report again (a second resume) changes nothing
        cb.on_trial_result(
            0, [], trial, {**resumed, RESTORED_METRICS: {"val_accuracy": 0.3, "lr": 0.01}}
        )
    run = children(recorder)["g"]
    history = MlflowClient(recorder.tracking_uri).get_metric_history(
        run.info.run_id, "val_accuracy"
    )
    assert [(m.step, m.value) for m in history] == [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)]


def test_interrupted_sweep_leaves_no_running_runs(recorder):
    cb = MLflowTrialCallback(recorder)
    cb.on_trial_start(0, [], fake_trial("x", {"n_hidden": 1}))
    recorder.finish_sweep({}, {}, status="KILLED")
    client = MlflowClient(recorder.tracking_uri)
    runs = client.search_runs([recorder.experiment_id])
    assert {r.info.status for r in runs} == {"KILLED"}
    assert children(recorder)["x"].data.tags["trial_status"] == "interrupted"


def test_unreachable_tracking_server_fails_fast():
    import time

    started = time.monotonic()
    with pytest.raises(TrackingError, match=r"tracking.uri=http://127.0.0.1:9"):
        check_reachable("http://127.0.0.1:9", timeout=3)
    assert time.monotonic() - started < 10


def test_records_of_the_old_vocabulary_read_as_todays(recorder):
    """Sweeps recorded before `stopped_early` became `pruned` read in today's words:
    each trial's status, and the parent's counts."""
    from search.summary import from_parent
    from tracking.runs import load_sweep

    cb = MLflowTrialCallback(recorder)
    old = fake_trial("a", {"n_hidden": 2})
    cb.on_trial_start(0, [], old)
    cb.on_trial_result(0, [], old, {"training_iteration": 1, "val_accuracy": 0.5})
    client = MlflowClient(recorder.tracking_uri)
    client.set_tag(children(recorder)["a"].info.run_id, "trial_status", "stopped_early")
    for key, value in (("trials_stopped_early", 3), ("trials_completed", 2)):
        client.log_metric(recorder.parent_run_id, key, value)

    sweep = load_sweep(recorder.tracking_uri, "unit", curves=False)
    assert [t.status for t in sweep.trials] == ["pruned"]
    summary = from_parent(client.get_run(recorder.parent_run_id), "unit", "", 1.0)
    assert summary.trials == {"completed": 2, "pruned": 3, "failed": 0}


def test_an_artifact_store_the_server_cannot_write_is_one_line(tmp_path, monkeypatch):
    """Seen on the cluster in a box (an MLflow server without boto3 for its S3 artifacts):
    the sweep's first artifact fails; that is a TrackingError naming the tracking URI,
    and the parent run it had opened is closed FAILED, not left RUNNING."""
    rec = SweepRecorder(f"sqlite:///{tmp_path / 'm.db'}", "noart")

    def refused(*args, **kwargs):
        raise RuntimeError("API request to .../config.yaml failed: too many 500 error responses")

    monkeypatch.setattr(rec.client, "log_text", refused)
    with pytest.raises(TrackingError) as caught:
        rec.start_sweep({"trials": 1}, {"sweep.name": "noart"}, "trials: 1\n")
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"tracking.uri={rec.tracking_uri}: cannot store the sweep's artifacts")
    assert "too many 500 error responses" in line
    (run,) = MlflowClient(rec.tracking_uri).search_runs([rec.experiment_id])
    assert run.info.status == "FAILED"


def test_reconcile_tags_a_retry_whose_own_event_was_lost(recorder):
    """The chaos test's rare case: a worker killed, Tune retried its trial, and the
    driver was killed while that tag waited in the queue. Tune's records count the
    failure; the final reconcile writes the tag, on a closed run or a new one."""
    from tracking.recorder import TrialEnd, TrialOutcome

    recorder.start_trial("a", "trial-a", {"n_hidden": 2})
    recorder.end_trial("a", TrialOutcome.COMPLETED, tags={"stop_reason": "max_epochs"})
    table = [
        TrialEnd(
            "a", "trial-a", {"n_hidden": 2}, TrialOutcome.COMPLETED, "max_epochs", 3, None, True
        ),
        TrialEnd(
            "b", "trial-b", {"n_hidden": 3}, TrialOutcome.COMPLETED, "max_epochs", 3, None, True
        ),
        TrialEnd("c", "trial-c", {"n_hidden": 4}, TrialOutcome.COMPLETED, "max_epochs", 3),
    ]
    recorder.reconcile(table)
    runs = children(recorder)
    assert runs["a"].data.tags["retried"] == "true" and runs["a"].info.status == "FINISHED"
    assert runs["b"].data.tags["retried"] == "true"
    assert "retried" not in runs["c"].data.tags
