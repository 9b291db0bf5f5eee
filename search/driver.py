"""The sweep driver: settings -> data -> MLflow parent run -> Ray Tune -> best model.

Reads top to bottom like Ray Tune's own examples: prepare (everything that can be
checked: config, data, task, objective, tracking backend, before Ray starts, so a bad
input costs seconds, not a cluster start-up), fit, select the final model, record it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from search.algorithms import make_scheduler, make_searcher
from search.callbacks import (
    MLflowTrialCallback,
    bind,
    error_text,
    outcome_of,
    trial_label,
    trial_params,
)
from search.errors import ConfigError, NoResultError
from search.final_model import FinalModel, final_model
from search.progress import ProgressCallback, format_params
from search.ray_runtime import check_address, start_ray
from search.settings import Settings
from search.sweep_state import find_state, write_state
from search.trainable import run_trial
from tracking import SweepRecorder, TrialOutcome
from tracking.health import check_reachable
from trainables.data import Loaded, load_dataset
from trainables.errors import DataError
from trainables.task import Objective

# What the logged model needs to be served; given explicitly because MLflow's
# requirement inference costs seconds per log_model call.
MODEL_REQUIREMENTS = ["tensorflow-cpu>=2.21", "keras>=3.15", "numpy", "pandas"]


@dataclass(frozen=True)
class UserInputs:
    """What the Python API can give besides the config: data already in memory (it
    replaces the ``dataset`` group) and a model builder of the user's own."""

    loaded: Loaded | None = None
    builder: Callable[..., Any] | None = None


@dataclass(frozen=True)
class SweepSummary:
    """What a finished sweep produced (the Python API returns it; the CLI prints it)."""

    name: str
    experiment_id: str
    parent_run_id: str
    trials: dict[str, int]
    best_params: dict[str, Any]
    best_trial: str
    task: str
    objective: str
    mode: str
    best_value: float
    test: dict[str, float]
    model_uri: str
    tracking_uri: str
    seconds: float
    # The registered model's members, (trial label, weight); one for a single model.
    members: tuple[tuple[str, float], ...] = ()
    best_trial_test: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """A checked sweep, ready to run: everything ``prepare`` found out before Ray."""

    settings: Settings
    data: Any
    objective: Objective
    algorithms: tuple[Any, Any] | None
    folder: str | None = None
    state: dict[str, Any] | None = None
    builder: Callable[..., Any] | None = None


def prepare(settings: Settings, inputs: UserInputs | None = None) -> Plan:
    """Resume state, data, task, objective, searcher, scheduler and tracking backend,
    all checked before Ray starts.

    Raises:
        ConfigError / DataError / TrackingError: naming the offending key or file.
    """
    inputs = inputs or UserInputs()
    folder, state = None, None
    if settings.resume:
        folder, state = find_state(settings.storage_path, settings.name)
        settings = Settings.from_config(
            state["config"],
            lr_suggestion=state["lr_suggestion"],
            custom_params=inputs.builder is not None,
        )
    if settings.cluster_address is not None:
        check_address(settings.cluster_address)
    data, settings = _load(settings, inputs)
    objective = Objective.for_task(data.task, settings.objective_metric, settings.objective_mode)
    settings.space.check_data(data.spec)
    if inputs.builder is not None:
        from search.user_model import check_builder, ship

        ship(inputs.builder)
        check_builder(inputs.builder, settings.space, data.spec, settings.seed)
    algorithms = None
    if state is None:  # built before Ray starts, so a bad option fails in seconds
        algorithms = (
            make_searcher(
                settings.space,
                settings.searcher,
                settings.seed,
                settings.max_concurrent,
                objective,
            ),
            make_scheduler(settings.scheduler, settings.max_epochs),
        )
    check_reachable(settings.tracking_uri)
    return Plan(settings, data, objective, algorithms, folder, state, inputs.builder)


def _load(settings: Settings, inputs: UserInputs) -> tuple[Any, Settings]:
    """The data in memory, or a table or image folder streamed through Ray Data (then,
    on this machine, one CPU stays free for Ray Data's reads)."""
    from search.streaming import free_cpu_needed, open_streamed, wants_streaming

    if inputs.loaded is not None or not wants_streaming(settings.dataset):
        return load_dataset(settings.dataset, settings.seed, settings.task, inputs.loaded), settings
    data = open_streamed(settings.dataset, settings.seed, settings.task)
    room = free_cpu_needed(
        settings.cluster_address, settings.max_concurrent, settings.cpus_per_trial
    )
    if room is None:
        return data, settings
    if settings.resolved.get("max_concurrent") is not None:
        raise ConfigError(
            f"max_concurrent={settings.max_concurrent}: a streaming sweep leaves one of this "
            f"machine's CPUs to Ray Data's reads; at most {room} here"
        )
    return data, replace(settings, max_concurrent=room)


def _sweep_params(plan: Plan) -> dict[str, Any]:
    s, data = plan.settings, plan.data
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
        "inputs": data.inputs.describe(),
        "task": data.task.kind,
        "task.classes": ",".join(data.task.classes)[:500],
        "objective.metric": plan.objective.metric,
        "objective.mode": plan.objective.mode,
        "search_space": s.space.name,
        "model": "build_model (Python API)" if plan.builder else "mlp",
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


def _budget(settings: Settings, started_at: float) -> float | None:
    """``time_budget_s`` counts from ``started_at`` (the command's start, as a user reads
    "10 minutes"); Ray's own clock starts at ``fit``, after imports, data and Ray."""
    if settings.time_budget_s is None:
        return None
    return max(1.0, settings.time_budget_s - (time.time() - started_at))


def _tuner(plan: Plan, trainable: Any, budget: float | None) -> Any:
    """A new Tuner with the plan's searcher and scheduler, or the one a killed sweep
    left in ``plan.folder`` (resume: Tune restores its own searcher and scheduler)."""
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    settings, objective = plan.settings, plan.objective
    wrapped = tune.with_resources(
        tune.with_parameters(
            trainable,
            data=plan.data,
            settings={
                "max_epochs": settings.max_epochs,
                "seed": settings.seed,
                "checkpoint_frequency": settings.checkpoint_frequency,
                "tensorboard": settings.tensorboard,
                "objective": (objective.metric, objective.mode),
                "builder": plan.builder,
            },
        ),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )
    if plan.folder is not None:
        return tune.Tuner.restore(
            plan.folder, trainable=wrapped, resume_unfinished=True, resume_errored=False
        )
    assert plan.algorithms is not None
    return tune.Tuner(
        wrapped,
        tune_config=tune.TuneConfig(
            metric=objective.metric,
            mode=objective.mode,
            search_alg=plan.algorithms[0],
            scheduler=plan.algorithms[1],
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
                    objective=objective,
                ),
            ],
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=settings.checkpoint_keep,
                checkpoint_score_attribute=objective.metric,
                checkpoint_score_order=objective.mode,
            ),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            verbose=0,
        ),
    )


def _open_records(plan: Plan, say: Callable[[str], None]) -> SweepRecorder:
    """The sweep's MLflow parent run: a new one, or the one a resumed sweep left open."""
    settings = plan.settings
    recorder = SweepRecorder(settings.tracking_uri, settings.name)
    if plan.state is not None:
        recorder.attach(plan.state["parent_run_id"])
        say(f"Resuming sweep '{settings.name}' from {plan.folder}")
    else:
        recorder.start_sweep(
            params=_sweep_params(plan),
            tags={"sweep.name": settings.name},
            config_yaml=yaml.safe_dump(settings.resolved, sort_keys=False),
        )
    bind(recorder)
    return recorder


def _announce(plan: Plan, recorder: SweepRecorder, say: Callable[[str], None]) -> None:
    s, data = plan.settings, plan.data
    say(
        f"Sweep '{s.name}': {data.task.kind} on {data.name} ({data.inputs.describe()}, "
        f"{data.sizes()}), optimizing {plan.objective.metric} ({plan.objective.mode}); "
        f"{s.trials} trials of search space '{s.space.name}', {s.searcher['name']} + "
        f"{s.scheduler['name']}, {s.max_concurrent} at a time; "
        f"MLflow run {recorder.parent_run_id} at {s.tracking_uri}"
    )
    for note in data.notes:
        say(f"  {note}")


def run_sweep(
    settings: Settings,
    echo: Callable[[str], None] = print,
    trainable: Any = run_trial,
    inputs: UserInputs | None = None,
    started_at: float | None = None,
) -> SweepSummary:
    """Run a whole sweep (or continue one: ``settings.resume``) and return its summary.
    ``started_at`` (wall-clock seconds) is where ``time_budget_s`` counts from (default:
    now).

    Raises:
        ConfigError / DataError / TrackingError: bad input, before any trial starts.
        NoResultError: the sweep ran but no trial finished an epoch.
    """
    from tracking.secrets import mask

    started = time.monotonic()
    started_at = time.time() if started_at is None else started_at

    def say(line: str) -> None:  # every line the sweep prints, credentials masked
        echo(mask(line))

    plan = prepare(settings, inputs)
    recorder = _open_records(plan, say)
    _announce(plan, recorder, say)

    import ray

    owns_ray = start_ray(plan.settings)
    status = "FAILED"
    try:
        tuner = _tuner(plan, trainable, _budget(plan.settings, started_at))
        if plan.state is None:
            write_state(
                _tune_folder(tuner),
                {
                    "config": plan.settings.resolved,
                    "lr_suggestion": plan.settings.lr_suggestion,
                    "parent_run_id": recorder.parent_run_id,
                    "tracking_uri": plan.settings.tracking_uri,
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
        best = _best(plan, results, table, counts, started)
        final = final_model(
            results,
            best,
            plan.data,
            plan.objective,
            plan.settings.ensemble_size,
            plan.settings.ensemble_candidates,
        )
        summary = _finish(plan, recorder, final, best, counts, started, driver_cpu)
        status = "FINISHED"
        return summary
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if status != "FINISHED":
            recorder.finish_sweep({}, {}, status=status)
        if owns_ray:
            ray.shutdown()


def _best(
    plan: Plan, results: Any, table: list[dict[str, Any]], counts: dict[str, int], started: float
) -> tuple[str, Any, float, dict[str, Any]]:
    """(trial id, best checkpoint, best objective value, params) of the best trial.

    Raises:
        NoResultError: no trial finished an epoch.
    """
    objective, settings = plan.objective, plan.settings
    if all(r.metrics.get(objective.metric) is None for r in results):
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
    best = results.get_best_result(objective.metric, objective.mode, scope="all")
    value = objective.best_of(best.metrics_dataframe[objective.metric].tolist())
    return (
        str(best.metrics.get("trial_id", "?")),
        best.get_best_checkpoint(objective.metric, objective.mode),
        value,
        dict(sorted(best.config.items())),
    )


def _tune_folder(tuner: Any) -> str:
    """The Tune experiment folder of a new Tuner (where its state and ours live)."""
    config = tuner._local_tuner.get_run_config()
    return str(Path(config.storage_path) / config.name)


def _scores(plan: Plan, final: FinalModel) -> tuple[dict[str, float], dict[str, float]]:
    """The registered model's test metrics, and the best trial's own (the same unless
    the registered model is an ensemble). The test split is read here, once."""
    from trainables.evaluate import score

    data, samples = plan.data, plan.settings.mc_dropout_samples
    test = score(final.model, data, "test", samples)
    if len(final.members) > 1:
        return test, score(final.best_trial_model, data, "test")
    return test, test


def _finish(
    plan: Plan,
    recorder: SweepRecorder,
    final: FinalModel,
    best: tuple[str, Any, float, dict[str, Any]],
    counts: dict[str, int],
    started: float,
    driver_cpu: float,
) -> SweepSummary:
    """Score the registered model on the test set, log and register it, write the
    report and close the parent run."""
    settings, objective = plan.settings, plan.objective
    test, alone = _scores(plan, final)
    model_uri = _register(plan, recorder, final.model)
    extra_params: dict[str, Any] = {}
    extra: dict[str, float] = {f"best_trial_test_{objective.name}": alone[objective.name]}
    if len(final.members) > 1:
        extra |= {
            f"ensemble_{objective.metric}": final.val_score,
            "ensemble_members": len(final.members),
        }
        extra_params["ensemble.members"] = ",".join(f"{t}:{w:.3g}" for t, w in final.members)
    _log_report(plan, recorder)
    recorder.finish_sweep(
        metrics={
            f"best_{objective.metric}": best[2],
            **{f"test_{k}": v for k, v in test.items()},
            **extra,
            "trials_completed": counts["completed"],
            "trials_stopped_early": counts["stopped_early"],
            "trials_failed": counts["failed"],
            "driver_cpu_seconds": driver_cpu,
        },
        params={f"best.{k}": v for k, v in best[3].items()} | extra_params,
    )
    assert recorder.experiment_id is not None and recorder.parent_run_id is not None
    return SweepSummary(
        name=settings.name,
        experiment_id=recorder.experiment_id,
        parent_run_id=recorder.parent_run_id,
        trials=counts,
        best_params=best[3],
        best_trial=f"trial-{best[0]}",
        task=plan.data.task.kind,
        objective=objective.metric,
        mode=objective.mode,
        best_value=best[2],
        test=test,
        model_uri=model_uri,
        tracking_uri=settings.tracking_uri,
        seconds=time.monotonic() - started,
        members=final.members,
        best_trial_test=alone,
    )


def _register(plan: Plan, recorder: SweepRecorder, model: Any) -> str:
    """Log ``model`` to the parent run as a SavedModel (tables: inside a pyfunc that
    takes raw rows) and register it; returns its URI."""
    import tempfile

    from tracking.models import keras_saver, table_saver
    from trainables.evaluate import predict
    from trainables.serving import ROWS, example_rows, export_table_model, output_names

    data, name = plan.data, plan.settings.registered_model
    if data.inputs.kind != "table":
        example = example_rows(data)
        saver = keras_saver(model, example, predict(model, example), MODEL_REQUIREMENTS)
        return recorder.log_model(saver, name)[0]
    with tempfile.TemporaryDirectory(prefix="dnn-sweep-export-") as tmp:
        artifacts = export_table_model(model, data.spec, Path(tmp))
        columns = [c.name for c in data.inputs.columns]
        saver = table_saver(
            artifacts,
            columns,
            output_names(data.spec),
            [str(ROWS)],
            MODEL_REQUIREMENTS,
            input_example=example_rows(data),
        )
        return recorder.log_model(saver, name)[0]


def _log_report(plan: Plan, recorder: SweepRecorder) -> None:
    """Plots and the leaderboard CSV, built from what MLflow holds, logged to the parent
    run under ``report/``. A figure that cannot be drawn is named in the report's
    README.txt and in the ``report_notes`` tag; the sweep's results stand regardless."""
    import tempfile

    from search.report import build_report
    from tracking.runs import load_sweep

    settings = plan.settings
    assert recorder.parent_run_id is not None
    sweep = load_sweep(
        settings.tracking_uri,
        settings.name,
        recorder.parent_run_id,
        objective=(plan.objective.metric, plan.objective.mode),
    )
    with tempfile.TemporaryDirectory(prefix="dnn-sweep-report-") as tmp:
        notes = build_report(sweep, Path(tmp))
        recorder.log_artifacts(recorder.parent_run_id, tmp, "report")
    if notes:
        recorder.set_tags(recorder.parent_run_id, {"report_notes": "; ".join(notes)[:4000]})


def _fmt_scores(scores: dict[str, float]) -> str:
    """``test_accuracy 0.9056, test_loss 0.2132``: named as the parent run logs them."""
    return ", ".join(f"test_{k} {v:.4g}" for k, v in scores.items() if not k.startswith("mc_"))


def _ensemble_lines(s: SweepSummary) -> list[str]:
    if len(s.members) < 2:
        return []
    members = ", ".join(f"{label} x{w:.2f}" for label, w in s.members)
    return [
        f"Registered an ensemble of {len(s.members)} trials ({members}): "
        f"{_fmt_scores(s.test)} (the best trial alone: {_fmt_scores(s.best_trial_test)})"
    ]


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
            f"Best {s.best_trial}: {s.objective} {s.best_value:.4f} ({s.task}, "
            f"{s.mode}); {_fmt_scores(s.best_trial_test)}",
            f"  params: {format_params(s.best_params)}",
            *_ensemble_lines(s),
            f"MLflow: experiment '{s.name}' (id {s.experiment_id}), parent run {s.parent_run_id}",
            f"Model:  {s.model_uri} (TensorFlow SavedModel, registered)",
            f"Compare runs: {ui}  -> open #/experiments/{s.experiment_id}/runs",
        ]
    )


__all__ = ["ConfigError", "DataError", "SweepSummary", "UserInputs", "format_summary", "run_sweep"]
