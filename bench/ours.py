"""dnn-sweep in the benchmark: the real `sweep` command with a wall-clock budget; its
anytime curve, trial counts and busy time come back from its MLflow records. It
registers a greedy ensemble of its best trials (``ensemble.size``); the best trial's own
test accuracy is reported beside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import DATASET, SHORT_DATASET, cpu_count

ENSEMBLE_SIZE = 10


def command(out: Path, budget: float, seed: int, max_epochs: int, short: bool) -> list[str]:
    dataset = SHORT_DATASET if short else DATASET
    overrides = [f"dataset.{k}={v}" for k, v in dataset.items() if k != "name"]
    return [
        str(Path(sys.executable).parent / "sweep"),
        f"dataset={dataset['name']}",
        *overrides,
        "search_space=keras_tuner",
        "searcher=tpe",
        "scheduler=asha",
        f"trials={100000}",
        f"max_epochs={max_epochs}",
        f"max_concurrent={cpu_count()}",
        f"seed={seed}",
        f"time_budget_s={budget}",
        # the registered model: a greedy ensemble of the best trials (inference only)
        f"ensemble.size={ENSEMBLE_SIZE}",
        f"ensemble.candidates={ENSEMBLE_SIZE}",
        f"name=bench-{seed}",
        f"tracking.uri=sqlite:///{out / 'mlflow.db'}",
        f"ray.storage_path={out / 'ray'}",
    ]


def collect(out: Path, seed: int, launched_wall: float) -> dict[str, Any]:
    """Curve, counts, busy seconds and test accuracy from the sweep's MLflow records."""
    from mlflow.tracking import MlflowClient

    from tracking.runs import newest_sweep_runs

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    parent, children = newest_sweep_runs(client, f"bench-{seed}")
    points, busy, epochs = [], 0.0, 0
    for c in children:
        for m in client.get_metric_history(c.info.run_id, "val_accuracy"):
            points.append((m.timestamp / 1000 - launched_wall, m.value))
        seconds = client.get_metric_history(c.info.run_id, "epoch_seconds")
        busy += sum(m.value for m in seconds)
        epochs += len(seconds)
    finished = sum(c.data.tags.get("trial_status") in ("completed", "pruned") for c in children)
    return {
        "points": sorted(points),
        "trials_started": len(children),
        "trials_finished": finished,
        "epochs": epochs,
        "busy_seconds": busy,  # training + validation
        "test_accuracy": parent.data.metrics.get("test_accuracy"),  # the registered model
        "best_trial_test_accuracy": parent.data.metrics.get("best_trial_test_accuracy"),
        "ensemble_members": parent.data.metrics.get("ensemble_members", 1),
    }


def run(out: Path, budget: float, seed: int, max_epochs: int, short: bool) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "sweep.log", "w")  # noqa: SIM115 - owned by the process
    return subprocess.Popen(
        command(out, budget, seed, max_epochs, short),
        cwd=out,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
