"""Training after the search: re-checks of the best configs on fresh seeds, and refits of
the chosen ones on training + validation data.

Both run as Ray tasks with a trial's resources (its CPUs, its GPU share), as many at a
time as the sweep runs trials, on whichever node Ray places them: the final phase uses
the cluster the search used. The data goes to the object store once. Results come back
to the driver, which alone writes MLflow (each job's run is logged when it ends, so a
killed driver leaves no half-open run behind).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from trainables.task import Objective


@dataclass(frozen=True)
class Job:
    """One training run of the final phase: ``phase`` is ``recheck`` (train on the
    training split, validate each epoch, up to ``epochs``) or ``refit`` (train on
    training + validation for exactly ``epochs``)."""

    phase: str
    trial_id: str
    params: dict[str, Any]
    seed: int
    epochs: int


@dataclass(frozen=True)
class Done:
    """What a job gave back: its learning curve (one dict of metrics per epoch), its
    best objective value and the epoch it was reached at (re-checks), the model as a
    ``.keras`` file's bytes (refits), or the error that ended it."""

    job: Job
    curve: list[dict[str, float]] = field(default_factory=list)
    best: float = float("nan")
    best_epoch: int = 0
    model: bytes | None = None
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Options:
    """The sweep-wide options every job shares."""

    max_epochs: int
    objective: tuple[str, str]
    builder: Any = None
    source: bytes | None = None  # a transfer sweep's source (.keras bytes)
    cache: Any = True  # transfer.cache: False, True (per job) or a SharedFeatures
    steps_per_execution: int = 1  # trial.steps_per_execution


def run_jobs(
    jobs: list[Job],
    data: Any,
    options: Options,
    resources: dict[str, float],
    at_once: int,
) -> Iterator[Done]:
    """Run ``jobs`` as Ray tasks, ``at_once`` at a time, yielding each as it ends."""
    import ray

    task = ray.remote(_run_job).options(
        num_cpus=resources.get("cpu", 1), num_gpus=resources.get("gpu", 0), max_retries=1
    )
    data_ref = ray.put(data)
    waiting, running = list(jobs), []
    while waiting or running:
        while waiting and len(running) < max(1, at_once):
            running.append(task.remote(waiting.pop(0), data_ref, options))
        ready, running = ray.wait(running, num_returns=1)
        yield ray.get(ready[0])


def _run_job(job: Job, data: Any, options: Options) -> Done:
    """A Ray task: TensorFlow sized to the task's resources, then the job."""
    from search.tune_trial import place

    place()
    started = time.perf_counter()
    try:
        run = _recheck if job.phase == "recheck" else _refit
        done = run(job, data, options)
    except Exception as exc:  # noqa: BLE001 - a job's failure is recorded, not fatal
        return Done(job, error=f"{type(exc).__name__}: {exc}"[:500])
    return replace(done, seconds=time.perf_counter() - started)


def _recheck(job: Job, data: Any, options: Options) -> Done:
    """The config trained again on the training split with a fresh seed, as its trial
    was (same epoch cap, same early stopping); its best validation value."""
    from trainables.train import train
    from trainables.transfer import loader

    objective = Objective(*options.objective)
    curve: list[dict[str, float]] = []

    def keep(epoch: int, metrics: dict[str, float], model: Any, last: bool) -> None:
        curve.append({**metrics, "epoch": float(epoch)})

    train(
        job.params,
        data,
        max_epochs=job.epochs,
        on_epoch_end=keep,
        objective=objective,
        seed=job.seed,
        builder=options.builder,
        source=None if options.source is None else loader(options.source),
        cache=options.cache,
        steps_per_execution=options.steps_per_execution,
    )
    values = [row[objective.metric] for row in curve]
    best = objective.best_of(values)
    return Done(job, curve=curve, best=best, best_epoch=values.index(best) + 1)


def _refit(job: Job, data: Any, options: Options) -> Done:
    """The config trained on training + validation for ``job.epochs``; the model as
    bytes (a ``.keras`` file) for the driver."""
    from trainables.train import refit
    from trainables.transfer import loader

    model, losses = refit(
        job.params,
        data,
        epochs=job.epochs,
        max_epochs=options.max_epochs,
        seed=job.seed,
        builder=options.builder,
        source=None if options.source is None else loader(options.source),
        steps_per_execution=options.steps_per_execution,
    )
    with tempfile.TemporaryDirectory(prefix="dnn-sweep-refit-") as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            blob = f.read()
    curve = [{"loss": v, "epoch": float(i)} for i, v in enumerate(losses, 1)]
    return Done(job, curve=curve, best_epoch=len(losses), model=blob)


def load_model(blob: bytes) -> Any:
    """A refit's model from the bytes its task sent."""
    from trainables.train import load_checkpoint

    with tempfile.TemporaryDirectory(prefix="dnn-sweep-refit-") as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(blob)
        return load_checkpoint(path)
