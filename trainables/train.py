"""The training loop of one trial: build, fit epoch by epoch, report after each epoch."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from trainables.data import Dataset
from trainables.model import build_model

# Called after every epoch with (epoch number from 1, metrics, model, is_last_epoch).
EpochHook = Callable[[int, dict[str, float], keras.Model, bool], None]


@dataclass(frozen=True)
class TrainResult:
    """How a training run ended (when it was not stopped from outside)."""

    epochs: int
    best_val_accuracy: float
    stopped_by_patience: bool


class DivergedError(FloatingPointError):
    """The loss became NaN or infinite: the trial's params make training diverge."""


def configure_threads(threads: int) -> int:
    """Make TensorFlow use ``threads`` threads, as many CPUs as the trial was given.

    Must run before TensorFlow executes its first op in this process; later calls
    (a reused worker) keep the first setting, which is the same slot size.
    Returns the intra-op thread count in force.
    """
    import tensorflow as tf

    threads = max(1, int(threads))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:
        pass  # context already initialized in this worker: keep its setting
    return tf.config.threading.get_intra_op_parallelism_threads()


class _EpochReporter(keras.callbacks.Callback):
    """Hands each epoch's metrics to the hook; placed after EarlyStopping so that
    ``model.stop_training`` already tells whether this epoch is the last one."""

    def __init__(self, hook: EpochHook, max_epochs: int) -> None:
        super().__init__()
        self._hook = hook
        self._max_epochs = max_epochs
        self._started = 0.0
        self.best_val_accuracy = -math.inf
        self.epochs = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        metrics = {k: float(logs[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        if not all(math.isfinite(v) for v in metrics.values()):
            raise DivergedError(
                f"loss diverged at epoch {epoch + 1}: loss={metrics['loss']}, "
                f"val_loss={metrics['val_loss']}"
            )
        metrics["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        metrics["epoch_seconds"] = time.perf_counter() - self._started
        self.epochs = epoch + 1
        self.best_val_accuracy = max(self.best_val_accuracy, metrics["val_accuracy"])
        last = bool(self.model.stop_training) or epoch + 1 >= self._max_epochs
        self._hook(epoch + 1, metrics, self.model, last)


def train(
    params: dict[str, Any],
    data: Dataset,
    *,
    max_epochs: int,
    on_epoch_end: EpochHook,
    patience: int = 0,
    batch_size: int = 32,
    seed: int = 0,
) -> TrainResult:
    """Train a fresh model for ``params`` on ``data``'s train split, validating each epoch.

    Starts from a cleared Keras session so a reused worker carries nothing over from
    the trial before. Early stopping watches ``val_loss`` with ``patience`` epochs
    (0 disables it); the hook is called after every epoch and may raise to stop.
    """
    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)
    model = build_model(
        params, data.input_dim, data.n_classes, input_scale=data.scale, seed=seed
    )
    reporter = _EpochReporter(on_epoch_end, max_epochs)
    callbacks: list[keras.callbacks.Callback] = []
    if patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience))
    callbacks.append(reporter)
    model.fit(
        data.x_train,
        data.y_train,
        batch_size=int(params.get("batch_size", batch_size)),
        epochs=max_epochs,
        validation_data=(data.x_val, data.y_val),
        callbacks=callbacks,
        verbose=0,
    )
    return TrainResult(
        epochs=reporter.epochs,
        best_val_accuracy=reporter.best_val_accuracy,
        stopped_by_patience=reporter.epochs < max_epochs,
    )
