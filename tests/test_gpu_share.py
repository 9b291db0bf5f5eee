"""On a machine with a GPU (and a GPU build of TensorFlow): four trials of trial.gpus=0.25
share one card at the same time, each capped at a quarter of its memory, without OOM.
Skipped where TensorFlow sees no GPU (this project's CI machines have none)."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import run_cli, trial_runs

pytestmark = [pytest.mark.slow, pytest.mark.gpu]


def _gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@pytest.mark.skipif(not _gpu_visible(), reason="no GPU visible to TensorFlow")
def test_four_trials_share_one_gpu(tmp_path):
    proc = run_cli(
        "sweep",
        tmp_path,
        "dataset=fashion_mnist",
        "dataset.max_per_class=2000",
        "search_space=keras_tuner",
        "trials=8",
        "max_epochs=4",
        "max_concurrent=4",
        "trial.gpus=0.25",
        "scheduler=fifo",
        "name=gpu",
        "tracking.uri=sqlite:///gpu.db",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'gpu.db'}")
    _, children = trial_runs(client, "gpu")
    assert len(children) == 8 and all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.tags["gpu_setup"].startswith("limit ") for c in children)
    spans = sorted((c.info.start_time, c.info.end_time) for c in children)
    peak = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert peak == 4  # four trials on the card at once


@pytest.mark.skipif(not _gpu_visible(), reason="no GPU visible to TensorFlow")
def test_whole_gpu_trials_use_the_card_and_show_it(tmp_path):
    proc = run_cli(
        "sweep",
        tmp_path,
        "dataset=digits",
        "trials=2",
        "max_epochs=3",
        "trial.gpus=1",
        "scheduler=fifo",
        "name=gpu1",
        "tracking.uri=sqlite:///gpu1.db",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'gpu1.db'}")
    (parent,), children = trial_runs(client, "gpu1")
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.tags["gpu_setup"] == "memory growth" for c in children)
    # the card on the parent's system metrics (nvidia-ml-py comes with the gpu extra)
    pytest.importorskip("pynvml")
    assert "system/gpu_0_utilization_percentage" in parent.data.metrics
