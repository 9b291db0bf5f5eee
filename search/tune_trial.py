"""The Ray Tune trainable: runs ``trainables.train`` and reports each epoch to Tune.

This is the only place where a trial touches Ray: it sizes TensorFlow to the CPUs and
GPU share Ray gave the trial, turns each epoch into a ``tune.report``, checkpoints the
model (every ``checkpoint.frequency`` epochs, whenever the objective improves, and at the
last epoch), and resumes from the latest checkpoint when Tune restarts the trial
(a retry after a lost node, an ASHA/PBT resume, or ``sweep resume=true``).
"""

from __future__ import annotations

import json
import math
import os
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray import tune

from search.callbacks import FINISHED_FLAG, NEW_PARAMS, RESTORED_METRICS
from search.pbt import flat
from trainables.costs import model_costs
from trainables.task import Objective

if TYPE_CHECKING:
    from trainables.train import TrainingData

MODEL_FILE = "model.keras"
META_FILE = "trial_state.json"


@dataclass
class RestorePoint:
    """Where a (re)started trial begins: its latest checkpoint, or nothing (fresh)."""

    model_path: str | None = None
    epoch: int = 0
    best: float | None = None
    folder: str | None = None  # the checkpoint's local copy, removed when the trial ends
    # the last epoch's metrics and stop reason, when that checkpoint ended the trial
    finished: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] | None = None  # the params the checkpoint was trained with


def _restore_point(objective: Objective) -> RestorePoint:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return RestorePoint(best=objective.worst)
    local = tempfile.mkdtemp(prefix="dnn-sweep-restore-")
    checkpoint.to_directory(local)
    if not Path(local, META_FILE).exists():  # emptied by search.retention.mend: start over
        return RestorePoint(best=objective.worst, folder=local)
    meta = json.loads(Path(local, META_FILE).read_text())
    return RestorePoint(
        model_path=str(Path(local, MODEL_FILE)),
        epoch=int(meta["epoch"]),
        best=float(meta["best"]),
        folder=local,
        finished=meta.get("finished"),
        metrics=meta.get("metrics", {}),
        config=meta.get("config"),
    )


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """The config as its checkpoint stores it (JSON), to compare with a stored one."""
    return json.loads(json.dumps(config, default=str))


_FROZEN: list[bool] = []
_GRAVEYARD: list[queue.SimpleQueue] = []


def _bury(remains: Any) -> None:
    """Let a background thread drop the last references to a finished trial's objects.

    Freeing a stopped trial's state (the frames of ``model.fit`` with its model,
    datasets and traced functions) sometimes waits 1-5 s inside TensorFlow, with no CPU
    used (measured: ~1 in 4 trials on Fashion-MNIST). On the trial's thread that wait
    holds up the worker's hand-over to the next trial (Tune's ``reset`` joins the
    thread); here it overlaps the next trial instead. The references are held until the
    trial's thread has ended, so the trial's thread is never the one that frees them."""
    if threading.current_thread() is threading.main_thread():
        return  # not a Tune trial thread: it never ends, so it frees its own objects
    if not _GRAVEYARD:
        graves: queue.SimpleQueue = queue.SimpleQueue()

        def dig() -> None:
            while True:
                thread, item = graves.get()
                thread.join()
                del thread, item  # the wait happens here, off the trial's thread

        threading.Thread(target=dig, name="dnn-sweep-graveyard", daemon=True).start()
        _GRAVEYARD.append(graves)
    _GRAVEYARD[0].put((threading.current_thread(), remains))


def _freeze_imports() -> None:
    """Move everything imported so far (TensorFlow's, Keras' many objects) out of the
    garbage collector's reach, once per worker: each trial starts with
    ``clear_session``, whose full ``gc.collect`` otherwise re-scans them (0.2-0.7 s
    per trial here, against ~0.02 s once frozen)."""
    if not _FROZEN:
        import gc

        import keras  # noqa: F401 - the imports to freeze

        gc.collect()
        gc.freeze()
        _FROZEN.append(True)


@dataclass(frozen=True)
class TrialOptions:
    """What every trial of a sweep is run with, besides its params and the data (given
    through ``tune.with_parameters``, so the object store holds it once)."""

    max_epochs: int
    seed: int
    objective: tuple[str, str]  # (metric, mode)
    checkpoint_frequency: int = 1
    tensorboard: dict[str, Any] | None = None
    builder: Any = None  # a user's build_model(params, spec), or None for our MLP
    costs: bool = False  # measure n_params / latency_ms (a cost objective asks)
    source: bytes | None = None  # transfer.source's .keras file: a transfer trial
    cache: Any = True  # transfer.cache: False, True (per trial) or a SharedFeatures
    steps_per_execution: int = 1  # trial.steps_per_execution


def run_trial(config: dict[str, Any], data: TrainingData, settings: TrialOptions) -> None:
    """Train one configuration. ``data`` arrives through Ray's object store (shared,
    zero-copy, never reloaded; or a streaming view that reads through Ray Data);
    ``settings`` holds the sweep-wide trial options (``objective`` as (metric, mode),
    and a user's ``builder`` if any).

    Besides the learning curves, each report carries where the trial's time went:
    ``setup_seconds`` (entry -> first epoch, on the first report), ``checkpoint_seconds``
    and ``report_seconds`` (saving, and waiting in ``tune.report`` for the driver, of the
    previous epoch), ``entered_at``/``worker_pid`` (to see gaps between trials).
    """
    entered = time.time()
    config = flat(config)  # a PBT population member's params
    devices, node = place()
    max_epochs, every = settings.max_epochs, settings.checkpoint_frequency
    objective = Objective(*settings.objective)
    start = _restore_point(objective)
    done, best = start.epoch, start.best
    _freeze_imports()
    tensorboard = _trial_tensorboard(settings.tensorboard)

    costs = {"checkpoint_seconds": 0.0, "report_seconds": 0.0}
    stored = _plain(config)
    rebuilt = stored if start.config not in (None, stored) else None  # PBT: new params
    served: dict[str, float] = {}  # model_costs, when an objective needs them

    def on_epoch_end(epoch: int, metrics: dict[str, float], model: Any, last: bool) -> None:
        nonlocal best
        if settings.costs and not served:  # once per run, for a cost objective
            served.update(model_costs(model, data))
        result: dict[str, Any] = {**metrics, **costs, **served, "epoch": epoch, "node_id": node}
        if epoch == done + 1:  # first epoch of this run (fresh or resumed)
            setup = time.time() - metrics["epoch_seconds"] - entered
            fields = _first_epoch_fields(start, devices, setup, entered, tensorboard, rebuilt)
            result.update(fields)
        if last:
            _bury(model)  # a completed trial's model is freed off the hand-over path
            result[FINISHED_FLAG] = True
            result["stop_reason"] = "max_epochs" if epoch >= max_epochs else "patience"
        improved = objective.better(metrics[objective.metric], best)
        if improved:
            best = metrics[objective.metric]
        saved = model if improved or last or epoch % every == 0 else None
        _report(result, metrics, saved, best, costs, stored)

    try:
        if start.finished or (start.model_path and done >= max_epochs):
            # its last epoch was checkpointed but never reached Tune's snapshot (a driver
            # killed in between): end it as it ended, from the checkpoint, no training
            tune.report(_final_report(start, max_epochs, node))
            return
        _train(config, data, settings, start, on_epoch_end, rebuilt is not None, tensorboard)
    except SystemExit as stop:  # Tune stopped the trial (scheduler, budget) in tune.report
        _trace("stopped", entered)
        _bury(stop.__traceback__)  # its frames hold the trial's model, data and functions
        raise
    finally:
        _leave(start, entered)


def _leave(start: RestorePoint, entered: float) -> None:
    """The restored checkpoint's local copy goes; the trace notes the trial left."""
    if start.folder:
        import shutil

        shutil.rmtree(start.folder, ignore_errors=True)
    _trace("left", entered)


def place() -> tuple[dict[str, Any], str]:
    """TensorFlow sized to the CPUs and GPU share Ray gave this trial; the node it is on."""
    from trainables.devices import configure_devices

    context = ray.get_runtime_context()
    resources = context.get_assigned_resources()
    devices = configure_devices(
        max(1, math.floor(resources.get("CPU", 1))), float(resources.get("GPU", 0.0))
    )
    return devices, context.get_node_id()


def _train(
    config: dict[str, Any],
    data: Any,
    settings: TrialOptions,
    start: RestorePoint,
    on_epoch_end: Any,
    rebuild: bool,
    tensorboard: dict[str, Any] | None,
) -> None:
    """``trainables.train`` from ``start``: fresh, resumed, or (``rebuild``) a model built
    for new params with the checkpoint's weights (PBT)."""
    from trainables.train import train
    from trainables.transfer import loader

    train(
        config,
        data,
        max_epochs=settings.max_epochs,
        on_epoch_end=on_epoch_end,
        objective=Objective(*settings.objective),
        seed=settings.seed,
        resume_from=start.model_path,
        rebuild=rebuild,
        initial_epoch=start.epoch,
        tensorboard=tensorboard,
        builder=settings.builder,
        source=None if settings.source is None else loader(settings.source),
        cache=settings.cache,
        steps_per_execution=settings.steps_per_execution,
    )


def _trial_tensorboard(options: dict[str, Any] | None) -> dict[str, Any] | None:
    """TensorBoard options with this trial's own folder (kept across retries, resumes)."""
    if not options:
        return None
    trial_id = tune.get_context().get_trial_id()
    return {**options, "log_dir": f"{options['log_dir']}/trial-{trial_id}"}


def _first_epoch_fields(
    start: RestorePoint,
    devices: dict[str, Any],
    setup_s: float,
    entered: float,
    tensorboard: dict[str, Any] | None,
    rebuilt: dict[str, Any] | None,
) -> dict[str, Any]:
    """What the first report of a run (fresh or resumed) adds: where it runs, its set-up
    time and, after a resume, the epoch it resumed from with that epoch's own values
    (the driver may have died before it logged them: a checkpoint can be newer than
    its records)."""
    fields: dict[str, Any] = {
        "tf_threads": devices["threads"],
        "gpu_setup": devices["gpu"],
        "setup_seconds": setup_s,
        "entered_at": entered,
        "worker_pid": os.getpid(),
    }
    if tensorboard:
        fields["tensorboard_dir"] = tensorboard["log_dir"]
    if start.epoch:
        fields["resumed_from_epoch"] = start.epoch
        fields[RESTORED_METRICS] = start.metrics
    if rebuilt is not None:  # PBT: another trial's weights, new params from here on
        fields[NEW_PARAMS] = json.dumps(rebuilt, sort_keys=True)
    return fields


def _report(
    result: dict[str, Any],
    metrics: dict[str, float],
    model: Any,
    best: float | None,
    costs: dict[str, float],
    config: dict[str, Any],
) -> None:
    """``tune.report`` the epoch, with a checkpoint when ``model`` is given (its model,
    epoch, best value, stop reason, metrics and params); ``costs`` gets the time each
    took."""
    if model is None:
        costs["checkpoint_seconds"] = 0.0
        reported = time.perf_counter()
        tune.report(result)
        costs["report_seconds"] = time.perf_counter() - reported
        return
    saving = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dnn-sweep-ckpt-") as tmp:
        model.save(os.path.join(tmp, MODEL_FILE))
        meta = {"epoch": result["epoch"], "best": best, "finished": result.get("stop_reason")}
        meta |= {"metrics": metrics, "config": config}
        Path(tmp, META_FILE).write_text(json.dumps(meta, default=float))
        reported = time.perf_counter()
        costs["checkpoint_seconds"] = reported - saving
        tune.report(result, checkpoint=tune.Checkpoint.from_directory(tmp))
    costs["report_seconds"] = time.perf_counter() - reported


def _final_report(start: RestorePoint, max_epochs: int, node: str) -> dict[str, Any]:
    return {
        **start.metrics,
        "epoch": start.epoch,
        "node_id": node,
        "resumed_from_epoch": start.epoch,
        FINISHED_FLAG: True,
        "stop_reason": start.finished
        or ("max_epochs" if start.epoch >= max_epochs else "patience"),
    }


def _trace(event: str, entered: float) -> None:
    """With DNN_SWEEP_TRACE=FILE, append (pid, trial entry time, event, time) lines: a
    diagnostic for how trials leave their worker (compare with the next trial's
    ``entered_at`` and Tune's debug log; see bench/README.md, worker hand-over)."""
    path = os.environ.get("DNN_SWEEP_TRACE")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps([os.getpid(), entered, event, time.time()]) + "\n")
