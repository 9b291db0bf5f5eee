"""The Ray Tune trainable: runs ``trainables.train`` and reports each epoch to Tune.

This is the only place where a trial touches Ray: it sizes TensorFlow's threads to the
CPUs Ray gave the trial, and turns each epoch into a ``tune.report`` (with a checkpoint
of the model whenever validation accuracy improves, so the driver can pick up the best
model without retraining it).
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any

import ray
from ray import tune

from search.callbacks import FINISHED_FLAG
from trainables.data import Dataset

MODEL_FILE = "model.keras"


def run_trial(config: dict[str, Any], data: Dataset, settings: dict[str, Any]) -> None:
    """Train one configuration. ``data`` arrives through Ray's object store (shared,
    zero-copy, never reloaded); ``settings`` holds the sweep-wide trial options."""
    from trainables.train import configure_threads, train

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    threads = configure_threads(max(1, math.floor(cpus)))
    max_epochs = int(settings["max_epochs"])
    best = -math.inf

    def on_epoch_end(epoch: int, metrics: dict[str, float], model: Any, last: bool) -> None:
        nonlocal best
        result: dict[str, Any] = dict(metrics)
        if epoch == 1:
            result["tf_threads"] = threads
        if last:
            result[FINISHED_FLAG] = True
            result["stop_reason"] = "max_epochs" if epoch >= max_epochs else "patience"
        if metrics["val_accuracy"] <= best:
            tune.report(result)
            return
        best = metrics["val_accuracy"]
        with tempfile.TemporaryDirectory(prefix="dnn-sweep-ckpt-") as tmp:
            model.save(os.path.join(tmp, MODEL_FILE))
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(tmp))

    train(
        config,
        data,
        max_epochs=max_epochs,
        on_epoch_end=on_epoch_end,
        seed=int(settings["seed"]),
    )
