"""The training loop of one trial: build, fit epoch by epoch, report after each epoch."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import keras

from trainables.model import BuildContext, build_model, compile_model
from trainables.params import Resolved, known_params, resolve
from trainables.private_apis import custom_gradients, forget_custom_gradients
from trainables.schedules import build_schedule
from trainables.spec import DataSpec
from trainables.task import Objective

if TYPE_CHECKING:
    from trainables.transfer import FeatureStore

# Called after every epoch with (epoch number from 1, metrics, model, is_last_epoch).
EpochHook = Callable[[int, dict[str, float], keras.Model, bool], None]
# A user's model: (every param of the trial, the data's spec) -> a Keras model.
ModelBuilder = Callable[[dict[str, Any], DataSpec], keras.Model]
# A transfer trial's source: the source model loaded afresh (its layers become the new
# model's, so each build gets its own copy).
SourceLoader = Callable[[], keras.Model]


class TrainingData(Protocol):
    """What ``train`` needs of a dataset: its spec, and ``model.fit``'s data arguments
    (arrays in memory, or ``tf.data`` pipelines streaming through Ray Data)."""

    spec: DataSpec

    def fit_args(self, batch_size: int, seed: int) -> dict[str, Any]: ...


class RefitData(TrainingData, Protocol):
    """What ``refit`` needs besides: the training and validation splits as one."""

    def refit_args(self, batch_size: int, seed: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TrainResult:
    """How a training run ended (when it was not stopped from outside)."""

    epochs: int
    best: float  # the objective's best value
    stopped_by_patience: bool


class DivergedError(FloatingPointError):
    """The loss became NaN or infinite: the trial's params make training diverge."""


def configure_threads(threads: int) -> int:
    """Make TensorFlow use ``threads`` threads (see ``devices.configure_devices``)."""
    from trainables.devices import configure_devices

    return int(configure_devices(threads, gpus=0.0)["threads"])  # type: ignore[call-overload]


# Keys of Keras' epoch logs that are not learning-curve metrics.
_NOT_METRICS = ("learning_rate",)


class _EpochReporter(keras.callbacks.Callback):
    """Hands each epoch's metrics to the hook; placed after EarlyStopping and the
    schedule callbacks so ``model.stop_training`` already tells whether this epoch is
    the last one, and the logged learning rate is the one the next step uses."""

    def __init__(self, hook: EpochHook, max_epochs: int, objective: Objective) -> None:
        super().__init__()
        self._hook = hook
        self._max_epochs = max_epochs
        self._objective = objective
        self._started = 0.0
        self.best = objective.worst
        self.epochs = 0
        self.hook_model: keras.Model | None = None  # the whole model, when fit trains a part

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        metrics = {k: float(v) for k, v in logs.items() if k not in _NOT_METRICS}
        if self._objective.metric not in metrics:
            raise ValueError(
                f"objective.metric={self._objective.metric}: the model reports only "
                f"{', '.join(sorted(metrics))}"
            )
        if not all(math.isfinite(v) for v in metrics.values()):
            raise DivergedError(
                f"loss diverged at epoch {epoch + 1}: loss={metrics.get('loss')}, "
                f"val_loss={metrics.get('val_loss')}"
            )
        optimizer = self.model.optimizer
        metrics["lr"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        if hasattr(optimizer, "current_momentum"):
            metrics["momentum"] = optimizer.current_momentum()
        metrics["epoch_seconds"] = time.perf_counter() - self._started
        self.epochs = epoch + 1
        if self._objective.better(metrics[self._objective.metric], self.best):
            self.best = metrics[self._objective.metric]
        last = bool(self.model.stop_training) or epoch + 1 >= self._max_epochs
        self._hook(epoch + 1, metrics, self.hook_model or self.model, last)


# Tracing Keras' multi-step loop costs about 0.3 s more than one step per call, and each
# step it runs saves about half a millisecond on a CPU (measured: digits and Fashion-MNIST
# MLPs): fewer steps than this in a whole run, one step per call is faster.
MIN_LOOP_STEPS = 1000


def build_context(
    spec: DataSpec, batch_size: int, epochs: int, seed: int, steps_per_execution: int = 1
) -> BuildContext:
    """The builder's view of a dataset and a run; ``steps_per_execution`` applies to a
    run of at least ``MIN_LOOP_STEPS`` steps."""
    steps = max(1, math.ceil(spec.sizes.get("train", 1) / batch_size))
    return BuildContext(
        spec=spec,
        steps_per_epoch=steps,
        epochs=epochs,
        seed=seed,
        steps_per_execution=steps_per_execution if steps * epochs >= MIN_LOOP_STEPS else 1,
    )


def training_callbacks(
    params: dict[str, Any], ctx: BuildContext, objective: Objective | None = None
) -> list[Any]:
    """Schedule callbacks (performance scheduling) and early stopping on the
    objective (``patience`` epochs without improvement), in that order."""
    p = resolve(params)
    callbacks: list[keras.callbacks.Callback] = list(
        build_schedule(p, ctx.steps_per_epoch, ctx.epochs).callbacks
    )
    if p["patience"] > 0:
        watch = objective or Objective("val_loss", "min")
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=watch.metric,
                mode=watch.mode,
                patience=p["patience"],
                restore_best_weights=p["restore_best_weights"],
            )
        )
    return callbacks


def _tensorboard(options: dict[str, Any] | None) -> list[Any]:
    if not options:
        return []
    return [
        keras.callbacks.TensorBoard(
            log_dir=options["log_dir"],
            histogram_freq=options.get("histogram_freq", 0),
            profile_batch=options.get("profile_batch", 0),
        )
    ]


def make_model(
    params: dict[str, Any], ctx: BuildContext, builder: ModelBuilder | None = None
) -> keras.Model:
    """Our MLP, or the user's ``builder(params, spec)`` (compiled here with the params'
    optimizer and the task's loss and metrics unless it came compiled)."""
    if builder is None:
        return build_model(params, ctx)
    model = builder(dict(params), ctx.spec)
    if not isinstance(model, keras.Model):
        raise TypeError(f"build_model returned {type(model).__name__}, not a keras.Model")
    if not getattr(model, "compiled", False):
        compile_model(model, known_params(params), ctx)
    return model


def load_checkpoint(path: str) -> keras.Model:
    """A model saved by a trial (``.keras``), with its optimizer state."""
    import trainables.layers  # noqa: F401 - registers the custom objects
    import trainables.schedules  # noqa: F401

    return keras.saving.load_model(path)


def _starting_model(
    params: dict[str, Any],
    ctx: BuildContext,
    builder: ModelBuilder | None,
    resume_from: str | None,
    rebuild: bool,
) -> keras.Model:
    """A new model, the checkpointed one, or (``rebuild``) a new one for ``params`` with
    the checkpoint's weights and optimizer step (schedules go on where they were; the
    optimizer's moments start afresh under the new hyperparameters)."""
    if resume_from is None:
        return make_model(params, ctx, builder)
    saved = load_checkpoint(resume_from)
    if not rebuild:
        return saved
    model = make_model(params, ctx, builder)
    model.set_weights(saved.get_weights())
    model.optimizer.iterations.assign(saved.optimizer.iterations)
    return model


def train(
    params: dict[str, Any],
    data: TrainingData,
    *,
    max_epochs: int,
    on_epoch_end: EpochHook,
    objective: Objective,
    seed: int = 0,
    resume_from: str | None = None,
    rebuild: bool = False,
    initial_epoch: int = 0,
    tensorboard: dict[str, Any] | None = None,
    builder: ModelBuilder | None = None,
    source: SourceLoader | None = None,
    cache: bool | FeatureStore = True,
    steps_per_execution: int = 1,
) -> TrainResult:
    """Train a fresh model for ``params`` on ``data``'s train split, validating each epoch.

    Starts from a cleared Keras session so a reused worker carries nothing over from
    the trial before. Early stopping (``patience``, ``restore_best_weights``) watches
    the objective; schedule callbacks (performance scheduling) run before the hook.
    The hook is called after every epoch and may raise to stop training.
    ``resume_from`` is a saved ``.keras`` model (with its optimizer state, so schedules
    keyed on the optimizer step continue) to continue from after ``initial_epoch`` epochs;
    with ``rebuild`` (population-based training changed the params) a model built for
    ``params`` takes its weights and step count instead.
    ``tensorboard`` ({log_dir, histogram_freq, profile_batch}) adds Keras' TensorBoard
    callback (learning curves, and optionally weight histograms and a profile).
    ``builder`` is a user's ``build_model(params, spec)``; it gets every param, ours and
    its own. ``source`` makes it a transfer trial (``trainables.transfer``), trained in
    phases, the frozen part's outputs computed once when ``cache`` (a ``FeatureStore``:
    shared with other trials through it). ``steps_per_execution`` goes to Keras' compile.
    """
    p = resolve(known_params(params) if builder else params)
    keras.backend.clear_session(free_memory=True)
    registered = custom_gradients()
    keras.utils.set_random_seed(seed)
    ctx = build_context(data.spec, p["batch_size"], max_epochs, seed, steps_per_execution)
    reporter = _EpochReporter(on_epoch_end, max_epochs, objective)
    callbacks = [*training_callbacks(p, ctx, objective), *_tensorboard(tensorboard), reporter]
    try:
        if source is not None:
            phased = _Phased(source, cache, lambda: data.fit_args(p["batch_size"], seed))
            _fit_phases(p, ctx, phased, callbacks, resume_from, initial_epoch)
        else:
            model = _starting_model(params if builder else p, ctx, builder, resume_from, rebuild)
            model.fit(
                **data.fit_args(p["batch_size"], seed),
                epochs=max_epochs,
                callbacks=callbacks,
                initial_epoch=initial_epoch,
                verbose=0,
            )
    finally:
        forget_custom_gradients(registered)
    return TrainResult(reporter.epochs, reporter.best, reporter.epochs < max_epochs)


@dataclass(frozen=True)
class _Phased:
    """How a transfer model trains: its source, the frozen-layer cache (``train``'s
    ``cache``) and ``model.fit``'s data arguments (asked once per phase)."""

    load: SourceLoader
    cache: bool | FeatureStore
    args: Callable[[], dict[str, Any]]


def _fit_phases(
    p: Resolved,
    ctx: BuildContext,
    phased: _Phased,
    callbacks: list[Any],
    resume_from: str | None = None,
    initial_epoch: int = 0,
    until: int | None = None,
) -> tuple[keras.Model, list[float]]:
    """A transfer model trained phase by phase (``transfer.phases`` over ``ctx.epochs``)
    up to epoch ``until`` (default: all); each phase on a model built for it with the
    weights of the one before (or of the checkpoint resumed from) and compiled with its
    own learning rate; schedules go on from the steps taken. With the cache, a phase
    with a frozen bottom trains only the part above it, on the bottom's outputs computed
    once. Returns the whole model and its training-loss curve."""
    from trainables import transfer

    until = ctx.epochs if until is None else until
    first: keras.Model | None = phased.load()
    previous = load_checkpoint(resume_from) if resume_from else None
    depth = transfer.stack_of(transfer.source_model(first)).depth
    losses: list[float] = []
    for phase in transfer.phases(p, depth, ctx.epochs):
        end = min(phase.end, until)
        if end <= initial_epoch:
            continue
        model, features = transfer.build(
            first if first is not None else phased.load(), p, ctx, phase.frozen
        )
        first = None
        if previous is not None:
            transfer.copy_weights(previous, model)
        fit_model, args = model, phased.args()
        if phased.cache is not False and features is not None:
            bottom, top = transfer.split(model, features)
            store = None if phased.cache is True else phased.cache
            faster = transfer.cached(args, bottom, phase.frozen, store)
            fit_model, args = (top, faster) if faster is not None else (model, args)
        compile_model(fit_model, _scaled(p, phase.lr_factor), ctx)
        fit_model.optimizer.iterations.assign(transfer.phase_steps(phase, ctx.steps_per_epoch))
        for callback in callbacks:
            if isinstance(callback, _EpochReporter):
                callback.hook_model = model
        start = max(phase.start, initial_epoch)
        history = fit_model.fit(
            **args, epochs=end, initial_epoch=start, callbacks=callbacks, verbose=0
        )
        losses += [float(v) for v in history.history.get("loss", [])]
        previous = model
        if fit_model.stop_training or end >= until:
            break
    assert previous is not None
    return previous, losses


def _scaled(p: Resolved, factor: float) -> Resolved:
    """``p`` with the learning rate times ``factor`` (fine-tuning after unfreezing)."""
    return p if factor == 1 else Resolved({**p, "learning_rate": p["learning_rate"] * factor})


def refit(
    params: dict[str, Any],
    data: RefitData,
    *,
    epochs: int,
    max_epochs: int,
    seed: int,
    builder: ModelBuilder | None = None,
    source: SourceLoader | None = None,
    steps_per_execution: int = 1,
) -> tuple[keras.Model, list[float]]:
    """A fresh model for ``params`` trained on the training and validation splits
    together for ``epochs`` epochs (the best epoch count the search saw): how a
    practitioner retrains the winner once the validation split has done its job.
    The learning-rate schedule spans ``max_epochs`` as in the search, so the refit
    follows the trial's own trajectory up to its best epoch (on more data); nothing is
    left to validate on, so there is no early stopping and performance scheduling
    watches the training loss. With a transfer ``source`` it trains in the trial's
    phases (no cache: there is no validation split to reuse it on). Returns the model
    and its training-loss curve.
    """
    p = resolve(known_params(params) if builder else params)
    keras.backend.clear_session(free_memory=True)
    registered = custom_gradients()
    keras.utils.set_random_seed(seed)
    sizes = data.spec.sizes
    spec = replace(data.spec, sizes={**sizes, "train": sizes["train"] + sizes["val"]})
    ctx = build_context(spec, p["batch_size"], max_epochs, seed, steps_per_execution)
    callbacks = list(build_schedule(p, ctx.steps_per_epoch, ctx.epochs, monitor="loss").callbacks)
    until = max(1, min(epochs, max_epochs))
    try:
        if source is not None:
            phased = _Phased(source, False, lambda: data.refit_args(p["batch_size"], seed))
            model, losses = _fit_phases(p, ctx, phased, callbacks, until=until)
        else:
            model = make_model(params if builder else p, ctx, builder)
            history = model.fit(
                **data.refit_args(p["batch_size"], seed),
                epochs=until,
                callbacks=callbacks,
                verbose=0,
            )
            losses = [float(v) for v in history.history.get("loss", [])]
    finally:
        forget_custom_gradients(registered)
    if not all(math.isfinite(v) for v in losses):
        raise DivergedError(f"the refit's loss diverged: {losses}")
    return model, losses
