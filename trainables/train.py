"""The training loop of one trial: build, fit epoch by epoch, report after each epoch."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from trainables.data import Dataset
from trainables.model import BuildContext, build_model
from trainables.params import resolve
from trainables.schedules import build_schedule

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
    """Make TensorFlow use ``threads`` threads (see ``devices.configure_devices``)."""
    from trainables.devices import configure_devices

    return int(configure_devices(threads, gpus=0.0)["threads"])  # type: ignore[call-overload]


class _EpochReporter(keras.callbacks.Callback):
    """Hands each epoch's metrics to the hook; placed after EarlyStopping and the
    schedule callbacks so ``model.stop_training`` already tells whether this epoch is
    the last one, and the logged learning rate is the one the next step uses."""

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
        optimizer = self.model.optimizer
        metrics["lr"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        if hasattr(optimizer, "current_momentum"):
            metrics["momentum"] = optimizer.current_momentum()
        metrics["epoch_seconds"] = time.perf_counter() - self._started
        self.epochs = epoch + 1
        self.best_val_accuracy = max(self.best_val_accuracy, metrics["val_accuracy"])
        last = bool(self.model.stop_training) or epoch + 1 >= self._max_epochs
        self._hook(epoch + 1, metrics, self.model, last)


def _custom_gradients() -> set[str]:
    from tensorflow.python.framework import ops

    return {k for k in ops.gradient_registry._registry if k.startswith("CustomGradient-")}


def _forget_custom_gradients(before: set[str]) -> None:
    """Drop the gradient functions this run's tracing registered.

    Each trace of Keras' train step registers ``tf.custom_gradient`` functions (from
    ``tf.distribute``'s ``all_reduce``) in TensorFlow's global gradient registry, and they
    keep that trace's whole FuncGraph alive: a reused worker grew by ~11.7k Python objects
    and ~8 ms of set-up per trial. The run's model and graphs are gone after ``train``,
    so nothing can ask for these gradients again.
    """
    from tensorflow.python.framework import ops

    registry = ops.gradient_registry._registry
    for key in [k for k in registry if k.startswith("CustomGradient-") and k not in before]:
        registry.pop(key, None)


def build_context(data: Dataset, batch_size: int, epochs: int, seed: int) -> BuildContext:
    """The builder's view of a dataset and a run."""
    return BuildContext(
        input_dim=data.input_dim,
        n_classes=data.n_classes,
        input_scale=data.scale,
        feature_mean=data.feature_mean,
        feature_std=data.feature_std,
        steps_per_epoch=math.ceil(len(data.y_train) / batch_size),
        epochs=epochs,
        seed=seed,
    )


def training_callbacks(params: dict[str, Any], ctx: BuildContext) -> list[Any]:
    """Schedule callbacks (performance scheduling) and early stopping, in that order."""
    p = resolve(params)
    callbacks: list[keras.callbacks.Callback] = list(
        build_schedule(p, ctx.steps_per_epoch, ctx.epochs).callbacks
    )
    if p["patience"] > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=p["patience"],
                restore_best_weights=p["restore_best_weights"],
            )
        )
    return callbacks


def train(
    params: dict[str, Any],
    data: Dataset,
    *,
    max_epochs: int,
    on_epoch_end: EpochHook,
    seed: int = 0,
    resume_from: str | None = None,
    initial_epoch: int = 0,
    tensorboard: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a fresh model for ``params`` on ``data``'s train split, validating each epoch.

    Starts from a cleared Keras session so a reused worker carries nothing over from
    the trial before. Early stopping (``patience``, ``restore_best_weights``) watches
    ``val_loss``; schedule callbacks (performance scheduling) run before the hook.
    The hook is called after every epoch and may raise to stop training.
    ``resume_from`` is a saved ``.keras`` model (with its optimizer state, so schedules
    keyed on the optimizer step continue) to continue from after ``initial_epoch`` epochs.
    ``tensorboard`` ({log_dir, histogram_freq, profile_batch}) adds Keras' TensorBoard
    callback (learning curves, and optionally weight histograms and a profile).
    """
    p = resolve(params)
    keras.backend.clear_session(free_memory=True)
    registered = _custom_gradients()
    keras.utils.set_random_seed(seed)
    ctx = build_context(data, p["batch_size"], max_epochs, seed)
    if resume_from:
        import trainables.layers  # noqa: F401 - registers the custom objects
        import trainables.schedules  # noqa: F401

        model = keras.saving.load_model(resume_from)
    else:
        model = build_model(p, ctx)
    reporter = _EpochReporter(on_epoch_end, max_epochs)
    callbacks = training_callbacks(p, ctx)
    if tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=tensorboard["log_dir"],
                histogram_freq=tensorboard.get("histogram_freq", 0),
                profile_batch=tensorboard.get("profile_batch", 0),
            )
        )
    callbacks.append(reporter)
    try:
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=p["batch_size"],
            epochs=max_epochs,
            validation_data=(data.x_val, data.y_val),
            callbacks=callbacks,
            initial_epoch=initial_epoch,
            verbose=0,
        )
    finally:
        _forget_custom_gradients(registered)
    return TrainResult(
        epochs=reporter.epochs,
        best_val_accuracy=reporter.best_val_accuracy,
        stopped_by_patience=reporter.epochs < max_epochs,
    )
