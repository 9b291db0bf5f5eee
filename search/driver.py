"""The sweep driver: settings -> data -> MLflow parent run -> Ray Tune -> best model.

Reads top to bottom like Ray Tune's own examples; each argument comes from the config.
Everything that can be checked (config, data, tracking backend) is checked before Ray
starts, so a bad input costs seconds, not a cluster start-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from search.algorithms import METRIC, MODE, make_scheduler, make_searcher
from search.callbacks import (
    MLflowTrialCallback,
    bind,
    error_text,
    outcome_of,
    trial_label,
    trial_params,
)
from search.errors import NoResultError
from search.final_model import FinalModel, final_model
from search.progress import ProgressCallback, format_params
from search.ray_runtime import check_address, start_ray
from search.settings import Settings
from search.sweep_state import find_state, write_state
from search.trainable import run_trial
from tracking import SweepRecorder, TrialOutcome
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
    # The registered model's members, (trial label, weight); one for a single model.
    members: tuple[tuple[str, float], ...] = ()
    best_trial_test_accuracy: float | None = None


def _sweep_params(s: Settings, data: Dataset) -> dict[str, Any]:
    sizes = data.sizes()
    return {
        "name": s.name,
        "trials": s.trials,
        "max_epochs": s.max_epochs,
        "max_concurrent": s.max_concurrent,
        "gpus_per_trial": s.gpus_per_trial,
        "max_failures": s.max_failures,
        "checkpoint_frequency": s.checkpoint_frequency,
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


def _trial_table(results: Any) -> list[dict[str, Any]]:
    """Every trial's final state, from Tune's own records (not from callbacks, which a
    killed driver may have missed)."""
    table = []
    for trial in results._experiment_analysis.trials:
        errored = trial.status == "ERROR"
        outcome, reason = outcome_of(trial.last_result, errored)
        error = error_text(trial) if errored else None
        table.append(
            {
                "trial_id": trial.trial_id,
                "name": trial_label(trial),
                "params": trial_params(trial),
                "outcome": outcome,
                "reason": reason,
                "epochs": int((trial.last_result or {}).get("epoch", 0)),
                "error": error,
            }
        )
    return table


def _outcome_counts(table: list[dict[str, Any]]) -> dict[str, int]:
    counts = {o.tag: 0 for o in TrialOutcome}
    for t in table:
        counts[t["outcome"].tag] += 1
    return counts


def _tuner(
    settings: Settings,
    trainable: Any,
    folder: str | None,
    data: Dataset,
    algorithms: Any,
) -> Any:
    """A new Tuner with ``algorithms`` = (searcher, scheduler), or the one a killed sweep
    left in ``folder`` (resume: Tune restores its own searcher and scheduler).

    ``time_budget_s`` counts from the command's (this process') start, as a user reads
    "10 minutes": Ray's own clock starts at ``fit``, after imports, data loading and Ray
    start-up.
    """
    import psutil
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    spent = time.time() - psutil.Process().create_time()
    budget = None if settings.time_budget_s is None else max(1.0, settings.time_budget_s - spent)

    wrapped = tune.with_resources(
        tune.with_parameters(
            trainable,
            data=data,
            settings={
                "max_epochs": settings.max_epochs,
                "seed": settings.seed,
                "checkpoint_frequency": settings.checkpoint_frequency,
                "tensorboard": settings.tensorboard,
            },
        ),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )
    if folder is not None:
        return tune.Tuner.restore(
            folder, trainable=wrapped, resume_unfinished=True, resume_errored=False
        )
    return tune.Tuner(
        wrapped,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            search_alg=algorithms[0],
            scheduler=algorithms[1],
            num_samples=settings.trials,
            time_budget_s=budget,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"{settings.name}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=settings.storage_path,
            callbacks=[
                JsonLoggerCallback(),  # read back by Tune's ResultGrid (see ray_runtime)
                MLflowTrialCallback(),
                ProgressCallback(
                    settings.trials,
                    max_epochs=settings.max_epochs,
                    budget_s=budget,
                ),
            ],
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=settings.checkpoint_keep,
                checkpoint_score_attribute=METRIC,
                checkpoint_score_order=MODE,
            ),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            verbose=0,
        ),
    )


def run_sweep(
    settings: Settings, echo: Callable[[str], None] = print, trainable: Any = run_trial
) -> SweepSummary:
    """Run a whole sweep (or continue one: ``settings.resume``) and return its summary.

    Raises:
        ConfigError / DataError / TrackingError: bad input, before any trial starts.
    """
    from tracking.secrets import mask

    started = time.monotonic()

    def say(line: str) -> None:  # every line the sweep prints, credentials masked
        echo(mask(line))

    folder, state, algorithms = None, None, None
    if settings.resume:
        folder, state = find_state(settings.storage_path, settings.name)
        settings = Settings.from_config(state["config"], lr_suggestion=state["lr_suggestion"])
    else:  # built before Ray starts, so a bad searcher/scheduler option fails in seconds
        algorithms = (
            make_searcher(
                settings.space, settings.searcher, settings.seed, settings.max_concurrent
            ),
            make_scheduler(settings.scheduler, settings.max_epochs),
        )
    if settings.cluster_address is not None:
        check_address(settings.cluster_address)
    data = load_dataset(settings.dataset, settings.seed)
    check_reachable(settings.tracking_uri)
    recorder = SweepRecorder(settings.tracking_uri, settings.name)
    if state is not None:
        recorder.attach(state["parent_run_id"])
        say(f"Resuming sweep '{settings.name}' from {folder}")
    else:
        recorder.start_sweep(
            params=_sweep_params(settings, data),
            tags={"sweep.name": settings.name},
            config_yaml=yaml.safe_dump(settings.resolved, sort_keys=False),
        )
    bind(recorder)
    say(
        f"Sweep '{settings.name}': {settings.trials} trials of search space "
        f"'{settings.space.name}' on {data.name} {data.sizes()}, {settings.searcher['name']} + "
        f"{settings.scheduler['name']}, {settings.max_concurrent} at a time; "
        f"MLflow run {recorder.parent_run_id} at {settings.tracking_uri}"
    )

    import ray

    start_ray(settings)
    status = "FAILED"
    try:
        tuner = _tuner(settings, trainable, folder, data, algorithms)
        if state is None:
            write_state(
                _tune_folder(tuner),
                {
                    "config": settings.resolved,
                    "lr_suggestion": settings.lr_suggestion,
                    "parent_run_id": recorder.parent_run_id,
                    "tracking_uri": settings.tracking_uri,
                },
            )
        cpu_before = time.process_time()
        results = tuner.fit()
        # the driver's own CPU while trials ran: Tune's loop, the searcher, the scheduler,
        # MLflow logging, progress (what each more trial costs the driver)
        driver_cpu = time.process_time() - cpu_before
        table = _trial_table(results)
        recorder.reconcile(table)
        counts = _outcome_counts(table)
        if all(r.metrics.get(METRIC) is None for r in results):
            budget = (
                f"; time_budget_s={settings.time_budget_s:g} may be too short (it includes "
                f"start-up: {time.monotonic() - started:.0f} s so far)"
                if settings.time_budget_s is not None
                else ""
            )
            raise NoResultError(
                f"no trial finished an epoch ({len(table)} trials, {counts['failed']} failed: "
                f"see the trial runs' error tags in MLflow){budget}"
            )
        best = results.get_best_result(METRIC, MODE, scope="all")
        best_val = float(best.metrics_dataframe[METRIC].max())
        final = final_model(
            results,
            str(best.metrics.get("trial_id", "?")),
            best.get_best_checkpoint(METRIC, MODE),
            best_val,
            data,
            settings.ensemble_size,
            settings.ensemble_candidates,
        )
        summary = _finish(
            settings, recorder, data, best, best_val, final, counts, started, driver_cpu
        )
        status = "FINISHED"
        return summary
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if status != "FINISHED":
            recorder.finish_sweep({}, {}, status=status)
        ray.shutdown()


def _tune_folder(tuner: Any) -> str:
    """The Tune experiment folder of a new Tuner (where its state and ours live)."""
    config = tuner._local_tuner.get_run_config()
    return str(Path(config.storage_path) / config.name)


def _finish(
    settings: Settings,
    recorder: SweepRecorder,
    data: Dataset,
    best: Any,
    best_val: float,
    final: FinalModel,
    counts: dict[str, int],
    started: float,
    driver_cpu: float,
) -> SweepSummary:
    """Score the registered model (and the best trial's own, when they differ) on the
    test set, log and register it."""
    from trainables.evaluate import score

    model = final.model
    test = score(model, data.x_test, data.y_test, settings.mc_dropout_samples)
    test_loss, test_accuracy = test["loss"], test["accuracy"]
    ensemble_params: dict[str, Any] = {}
    if len(final.members) > 1:
        alone = score(final.best_trial_model, data.x_test, data.y_test)
        ensemble_metrics: dict[str, float] = {
            "ensemble_val_accuracy": final.val_accuracy,
            "ensemble_members": len(final.members),
            "best_trial_test_accuracy": alone["accuracy"],
        }
        ensemble_params = {
            "ensemble.members": ",".join(f"{label}:{w:.3g}" for label, w in final.members)
        }
    else:
        ensemble_metrics = {"best_trial_test_accuracy": test_accuracy}
    example = data.x_test[:5].astype("float32")
    model_uri, _ = recorder.log_keras_model(
        model,
        settings.registered_model,
        input_example=example,
        output_example=model.predict(example, verbose=0),
        pip_requirements=MODEL_REQUIREMENTS,
    )
    best_params = dict(sorted(best.config.items()))
    _log_report(settings, recorder)
    recorder.finish_sweep(
        metrics={
            "best_val_accuracy": best_val,
            **{f"test_{k}": v for k, v in test.items()},
            **ensemble_metrics,
            "trials_completed": counts["completed"],
            "trials_stopped_early": counts["stopped_early"],
            "trials_failed": counts["failed"],
            "driver_cpu_seconds": driver_cpu,
        },
        params={f"best.{k}": v for k, v in best_params.items()} | ensemble_params,
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
        members=final.members,
        best_trial_test_accuracy=ensemble_metrics["best_trial_test_accuracy"],
    )


def _log_report(settings: Settings, recorder: SweepRecorder) -> None:
    """Plots and the leaderboard CSV, built from what MLflow holds, logged to the parent
    run under ``report/``. A figure that cannot be drawn is named in the report's
    README.txt and in the ``report_notes`` tag; the sweep's results stand regardless."""
    import tempfile

    from search.report import build_report
    from tracking.runs import load_sweep

    assert recorder.parent_run_id is not None
    sweep = load_sweep(settings.tracking_uri, settings.name, recorder.parent_run_id)
    with tempfile.TemporaryDirectory(prefix="dnn-sweep-report-") as tmp:
        notes = build_report(sweep, Path(tmp))
        recorder.log_artifacts(recorder.parent_run_id, tmp, "report")
    if notes:
        recorder.set_tags(recorder.parent_run_id, {"report_notes": "; ".join(notes)[:4000]})


def _ensemble_lines(s: SweepSummary) -> list[str]:
    if len(s.members) < 2:
        return []
    members = ", ".join(f"{label} x{w:.2f}" for label, w in s.members)
    return [
        f"Registered an ensemble of {len(s.members)} trials ({members}): test_accuracy "
        f"{s.test_accuracy:.4f} (the best trial alone: {s.best_trial_test_accuracy:.4f})"
    ]


def format_summary(s: SweepSummary) -> str:
    """The end-of-sweep report printed by the CLI."""
    c = s.trials
    alone = s.test_accuracy if s.best_trial_test_accuracy is None else s.best_trial_test_accuracy
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
            f"test_accuracy {alone:.4f}",
            f"  params: {format_params(s.best_params)}",
            *_ensemble_lines(s),
            f"MLflow: experiment '{s.name}' (id {s.experiment_id}), parent run {s.parent_run_id}",
            f"Model:  {s.model_uri} (TensorFlow SavedModel, registered)",
            f"Compare runs: {ui}  -> open #/experiments/{s.experiment_id}/runs",
        ]
    )
