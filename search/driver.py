"""The sweep driver: settings -> data -> MLflow parent run -> Ray Tune -> best model.

Reads top to bottom like Ray Tune's own examples; each argument comes from the config.
Everything that can be checked (config, data, tracking backend) is checked before Ray
starts, so a bad input costs seconds, not a cluster start-up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from search.algorithms import METRIC, MODE, make_scheduler, make_searcher
from search.callbacks import MLflowTrialCallback
from search.progress import ProgressCallback, format_params
from search.settings import Settings
from search.trainable import MODEL_FILE, run_trial
from tracking import SweepRecorder
from tracking.health import check_reachable
from trainables.data import Dataset, load_dataset

# What the logged model needs to be served; given explicitly because MLflow's
# requirement inference costs seconds per log_model call.
MODEL_REQUIREMENTS = ["tensorflow-cpu>=2.21", "keras>=3.15", "numpy"]


@dataclass(frozen=True)
class SweepSummary:
    """What a finished sweep produced, for the CLI's summary and for tests."""

    name: str
    experiment_id: str
    parent_run_id: str
    trials: dict[str, int]
    best_params: dict[str, Any]
    best_trial: str
    best_val_accuracy: float
    test_accuracy: float
    test_loss: float
    model_uri: str
    tracking_uri: str
    seconds: float


def _sweep_params(s: Settings, data: Dataset) -> dict[str, Any]:
    sizes = data.sizes()
    return {
        "name": s.name,
        "trials": s.trials,
        "max_epochs": s.max_epochs,
        "max_concurrent": s.max_concurrent,
        "seed": s.seed,
        "dataset": data.name,
        "search_space": s.space.name,
        "searcher": s.searcher["name"],
        "scheduler": s.scheduler["name"],
        "cpus_per_trial": s.cpus_per_trial,
        "mc_dropout_samples": s.mc_dropout_samples,
        "train_size": sizes["train"],
        "val_size": sizes["val"],
        "test_size": sizes["test"],
    }


def _start_ray(settings: Settings) -> None:
    """Local Ray with exactly this machine's CPUs; dashboard off (nothing listens)."""
    import ray

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # workers inherit it
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # Tune warns each time a per-improvement checkpoint forces a state snapshot: by design.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # A reused worker waits this long for the previous trial's thread to exit; Ray's 2 s
    # default is too short on a loaded machine, and a failed reuse fails the next trial.
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "60")
    ray.init(
        num_cpus=os.cpu_count() or 1,
        num_gpus=0,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=True,
        logging_level="ERROR",
    )


def _outcome_counts(results: Any) -> dict[str, int]:
    counts = {"completed": 0, "stopped_early": 0, "failed": 0}
    for r in results:
        if r.error is not None:
            counts["failed"] += 1
        elif r.metrics.get("trial_finished"):
            counts["completed"] += 1
        else:
            counts["stopped_early"] += 1
    return counts


def run_sweep(settings: Settings, echo: Callable[[str], None] = print) -> SweepSummary:
    """Run a whole sweep and return its summary.

    Raises:
        ConfigError / DataError / TrackingError: bad input, before any trial starts.
    """
    started = time.monotonic()
    searcher = make_searcher(
        settings.space, settings.searcher, settings.seed, settings.max_concurrent
    )
    scheduler = make_scheduler(settings.scheduler, settings.max_epochs)
    data = load_dataset(settings.dataset, settings.seed)
    check_reachable(settings.tracking_uri)
    recorder = SweepRecorder(settings.tracking_uri, settings.name)
    recorder.start_sweep(
        params=_sweep_params(settings, data),
        tags={"sweep.name": settings.name},
        config_yaml=yaml.safe_dump(settings.resolved, sort_keys=False),
    )
    echo(
        f"Sweep '{settings.name}': {settings.trials} trials of search space "
        f"'{settings.space.name}' on {data.name} {data.sizes()}, {settings.searcher['name']} + "
        f"{settings.scheduler['name']}, {settings.max_concurrent} at a time; "
        f"MLflow run {recorder.parent_run_id} at {settings.tracking_uri}"
    )

    import ray
    from ray import tune

    _start_ray(settings)
    status = "FAILED"
    try:
        trainable = tune.with_resources(
            tune.with_parameters(
                run_trial,
                data=data,
                settings={"max_epochs": settings.max_epochs, "seed": settings.seed},
            ),
            {"cpu": settings.cpus_per_trial},
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode=MODE,
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=settings.trials,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=f"{settings.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=settings.storage_path,
                callbacks=[MLflowTrialCallback(recorder), ProgressCallback(settings.trials)],
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=1,
                    checkpoint_score_attribute=METRIC,
                    checkpoint_score_order=MODE,
                ),
                failure_config=tune.FailureConfig(max_failures=0),
                verbose=0,
            ),
        )
        results = tuner.fit()
        counts = _outcome_counts(results)
        if all(r.metrics.get(METRIC) is None for r in results):
            raise RuntimeError(
                f"no trial reported {METRIC} ({counts['failed']} failed): see the trial runs' "
                "error tags in MLflow"
            )
        best = results.get_best_result(METRIC, MODE, scope="all")
        best_val = float(best.metrics_dataframe[METRIC].max())
        checkpoint = best.get_best_checkpoint(METRIC, MODE)
        summary = _finish(settings, recorder, data, best, best_val, checkpoint, counts, started)
        status = "FINISHED"
        return summary
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if status != "FINISHED":
            recorder.finish_sweep({}, {}, status=status)
        ray.shutdown()


def _finish(
    settings: Settings,
    recorder: SweepRecorder,
    data: Dataset,
    best: Any,
    best_val: float,
    checkpoint: Any,
    counts: dict[str, int],
    started: float,
) -> SweepSummary:
    """Evaluate the best trial's model on the test set, log and register it."""
    import keras

    import trainables.layers  # noqa: F401 - registers the custom layers and schedules
    import trainables.schedules  # noqa: F401
    from trainables.evaluate import score

    with checkpoint.as_directory() as folder:
        model = keras.saving.load_model(Path(folder) / MODEL_FILE)
    test = score(model, data.x_test, data.y_test, settings.mc_dropout_samples)
    test_loss, test_accuracy = test["loss"], test["accuracy"]
    example = data.x_test[:5].astype("float32")
    model_uri, _ = recorder.log_keras_model(
        model,
        settings.registered_model,
        input_example=example,
        output_example=model.predict(example, verbose=0),
        pip_requirements=MODEL_REQUIREMENTS,
    )
    best_params = dict(sorted(best.config.items()))
    recorder.finish_sweep(
        metrics={
            "best_val_accuracy": best_val,
            **{f"test_{k}": v for k, v in test.items()},
            "trials_completed": counts["completed"],
            "trials_stopped_early": counts["stopped_early"],
            "trials_failed": counts["failed"],
        },
        params={f"best.{k}": v for k, v in best_params.items()},
    )
    assert recorder.experiment_id is not None and recorder.parent_run_id is not None
    return SweepSummary(
        name=settings.name,
        experiment_id=recorder.experiment_id,
        parent_run_id=recorder.parent_run_id,
        trials=counts,
        best_params=best_params,
        best_trial=f"trial-{best.metrics.get('trial_id', '?')}",
        best_val_accuracy=best_val,
        test_accuracy=float(test_accuracy),
        test_loss=float(test_loss),
        model_uri=model_uri,
        tracking_uri=settings.tracking_uri,
        seconds=time.monotonic() - started,
    )


def format_summary(s: SweepSummary) -> str:
    """The end-of-sweep report printed by the CLI."""
    c = s.trials
    ui = (
        f"mlflow ui --backend-store-uri {s.tracking_uri}"
        if not s.tracking_uri.startswith("http")
        else s.tracking_uri
    )
    return "\n".join(
        [
            f"Sweep '{s.name}' done in {s.seconds:.0f} s: {sum(c.values())} trials "
            f"({c['completed']} completed, {c['stopped_early']} stopped early, "
            f"{c['failed']} failed)",
            f"Best {s.best_trial}: val_accuracy {s.best_val_accuracy:.4f}, "
            f"test_accuracy {s.test_accuracy:.4f}",
            f"  params: {format_params(s.best_params)}",
            f"MLflow: experiment '{s.name}' (id {s.experiment_id}), parent run {s.parent_run_id}",
            f"Model:  {s.model_uri} (TensorFlow SavedModel, registered)",
            f"Compare runs: {ui}  -> open #/experiments/{s.experiment_id}/runs",
        ]
    )
