"""A trial that raises and a trial whose loss turns NaN end FAILED with their errors in
MLflow (after their retries); the others complete and the sweep goes on."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT
from tests.helpers import trial_runs

pytestmark = pytest.mark.slow


def test_failing_and_diverging_trials(tmp_path, monkeypatch):
    from search.driver import run_sweep
    from search.settings import Settings
    from tests.faulty import faulty_trial

    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # Ray workers import tests.faulty
    monkeypatch.chdir(tmp_path)
    cfg = {
        "name": "faults",
        "trials": 4,
        "max_epochs": 2,
        "max_concurrent": 2,
        "seed": 0,
        "trial": {"cpus": 1, "gpus": 0},
        "fault": {"max_failures": 1},
        "dataset": {"name": "digits"},
        "search_space": {
            "name": "faults",
            "params": {
                "n_hidden": 1,
                "optimizer": "adam",
                "n_neurons": {"type": "categorical", "choices": [16, 17, 18, 19]},
            },
        },
        "searcher": {"name": "random"},
        "scheduler": {"name": "fifo"},
        "tracking": {"uri": f"sqlite:///{tmp_path / 'f.db'}"},
        "ray": {"storage_path": str(tmp_path / "ray")},
    }
    # every choice once: the random sampler with this seed covers the four values
    summary = run_sweep(Settings.from_config(cfg), trainable=faulty_trial)
    client = MlflowClient(f"sqlite:///{tmp_path / 'f.db'}")
    (parent,), children = trial_runs(client, "faults")
    by_neurons: dict[str, list] = {}
    for c in children:
        by_neurons.setdefault(c.data.params["n_neurons"], []).append(c)
    assert len(children) == 4 and len({c.data.tags["trial_id"] for c in children}) == 4
    assert {"17", "19"} <= set(by_neurons), sorted(by_neurons)
    for c in by_neurons["17"]:
        assert c.info.status == "FAILED" and c.data.tags["trial_status"] == "failed"
        assert "injected failure for n_neurons=17" in c.data.tags["error"]
        assert c.data.tags.get("retried") == "true"  # retried once, then failed
    for c in by_neurons["19"]:
        assert c.info.status == "FAILED"
        assert "loss diverged" in c.data.tags["error"]
    healthy = [c for n, runs in by_neurons.items() if n in ("16", "18") for c in runs]
    assert healthy and all(c.info.status == "FINISHED" for c in healthy)
    assert summary.trials["failed"] == len(by_neurons["17"]) + len(by_neurons["19"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_failed"] == summary.trials["failed"]
