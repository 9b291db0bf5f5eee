"""The final phase of a sweep, after its trials: choose the model, score it once on the
test split, log and register it, write the report, prune checkpoints, close the parent.

Each step leaves a mark on the parent run (``summary.MODEL_TAG``, ``REPORT_TAG``) as it
completes, and is skipped when its mark is there: a sweep killed during this phase, or
resumed after it had finished, never scores twice, registers a second version of the
same model or writes a second report.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from search.errors import NoResultError
from search.final_model import FinalModel, final_model
from search.pareto import choose, front, points, write
from search.pbt import flat
from search.retention import prune
from search.summary import BEST_TRIAL_TAG, MODEL_TAG, REPORT_TAG, SweepSummary, from_parent
from tracking import SweepRecorder

# What the logged model needs to be served; given explicitly because MLflow's
# requirement inference costs seconds per log_model call.
MODEL_REQUIREMENTS = ["tensorflow>=2.21", "keras>=3.15", "numpy", "pandas"]


def finish(
    plan: Any,
    recorder: SweepRecorder,
    results: Any,
    counts: dict[str, int],
    started: float,
    driver_cpu: float,
) -> SweepSummary:
    """Every step of the final phase not done yet; the sweep's summary from its records."""
    settings = plan.settings
    assert recorder.parent_run_id is not None
    # several objectives: each trial's point, read once for the choice and the front
    rows = points(results, settings.objectives) if settings.objectives else None
    best = _best(plan, results, counts, started, rows)
    tags = recorder.parent().data.tags
    if MODEL_TAG not in tags:
        if rows is not None:
            _log_pareto(plan, recorder, rows, best[0])
        _choose_score_register(plan, recorder, results, best)
    if REPORT_TAG not in tags:
        _log_report(plan, recorder)
        recorder.set_tags(recorder.parent_run_id, {REPORT_TAG: "report/"})
    prune(results, plan.objective, settings.checkpoint_keep)
    recorder.finish_sweep(
        metrics={
            "trials_completed": counts["completed"],
            "trials_stopped_early": counts["stopped_early"],
            "trials_failed": counts["failed"],
            "driver_cpu_seconds": driver_cpu,
            "trials_planned": settings.trials,
        },
        params={},
    )
    run = recorder.parent()
    return from_parent(run, settings.name, settings.tracking_uri, time.monotonic() - started)


def reopen(recorder: SweepRecorder) -> None:
    """Trials are being added to a finished sweep: its final phase is to be done again
    after them, so its marks (and the last best trial's tags) go."""
    assert recorder.parent_run_id is not None
    tags = recorder.parent().data.tags
    stale = [k for k in tags if k.startswith("best.") or k == "ensemble.members"]
    recorder.delete_tags(recorder.parent_run_id, [MODEL_TAG, REPORT_TAG, BEST_TRIAL_TAG, *stale])


def _choose_score_register(
    plan: Any, recorder: SweepRecorder, results: Any, best: tuple[str, Any, float, dict]
) -> None:
    """The registered model (best trial or ensemble), its test metrics (the test split's
    one reading), logged; then the model logged, registered and marked on the parent."""
    settings, objective = plan.settings, plan.objective
    final = final_model(
        results, best, plan.data, objective, settings.ensemble_size, settings.ensemble_candidates
    )
    test, alone = _scores(plan, final)
    metrics = {f"best_{objective.metric}": best[2], **{f"test_{k}": v for k, v in test.items()}}
    metrics |= {f"best_trial_test_{k}": v for k, v in alone.items()}
    # tags, not params: a resume that adds trials may find another best (params are
    # write-once in MLflow)
    tags = {f"best.{k}": str(v) for k, v in best[3].items()}
    if len(final.members) > 1:
        metrics |= {
            f"ensemble_{objective.metric}": final.val_score,
            "ensemble_members": len(final.members),
        }
        tags["ensemble.members"] = ",".join(f"{t}:{w:.3g}" for t, w in final.members)
    assert recorder.parent_run_id is not None
    recorder.log_metrics(recorder.parent_run_id, metrics)
    recorder.set_tags(recorder.parent_run_id, tags)
    uri = _register(plan, recorder, final.model)
    recorder.set_tags(recorder.parent_run_id, {MODEL_TAG: uri, BEST_TRIAL_TAG: f"trial-{best[0]}"})


def _best(
    plan: Any,
    results: Any,
    counts: dict[str, int],
    started: float,
    rows: list[dict[str, Any]] | None = None,
) -> tuple[str, Any, float, dict[str, Any]]:
    """(trial id, best checkpoint, best objective value, params) of the best trial: best
    by the objective, or (``rows``: several objectives) the Pareto rule's choice.

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
            f"no trial finished an epoch ({sum(counts.values())} trials, "
            f"{counts['failed']} failed: see the trial runs' error tags in MLflow){budget}"
        )
    if rows is None:
        best = results.get_best_result(objective.metric, objective.mode, scope="all")
    else:
        chosen = choose(rows, settings.objectives, settings.pareto_tolerance)["trial_id"]
        best = next(r for r in results if str(r.metrics.get("trial_id")) == chosen)
    value = objective.best_of(best.metrics_dataframe[objective.metric].tolist())
    return (
        str(best.metrics.get("trial_id", "?")),
        best.get_best_checkpoint(objective.metric, objective.mode),
        value,
        dict(sorted(flat(best.config).items())),
    )


def _log_pareto(
    plan: Any, recorder: SweepRecorder, rows: list[dict[str, Any]], chosen: str
) -> None:
    """The front as CSV and plot (``pareto/``) and its size, on the parent run."""
    import tempfile

    objectives = plan.settings.objectives
    assert recorder.parent_run_id is not None
    with tempfile.TemporaryDirectory(prefix="dnn-sweep-pareto-") as tmp:
        write(rows, objectives, chosen, Path(tmp))
        recorder.log_artifacts(recorder.parent_run_id, tmp, "pareto")
    recorder.log_metrics(
        recorder.parent_run_id, {"pareto_front_size": len(front(rows, objectives))}
    )


def _scores(plan: Any, final: FinalModel) -> tuple[dict[str, float], dict[str, float]]:
    """The registered model's test metrics, and the best trial's own (the same unless
    the registered model is an ensemble). The test split is read here, once."""
    from trainables.evaluate import score

    data, samples = plan.data, plan.settings.mc_dropout_samples
    test = score(final.model, data, "test", samples)
    if len(final.members) > 1:
        return test, score(final.best_trial_model, data, "test")
    return test, test


def _register(plan: Any, recorder: SweepRecorder, model: Any) -> str:
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
        return recorder.log_model(saver, name, plan.round)[0]
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
        return recorder.log_model(saver, name, plan.round)[0]


def _log_report(plan: Any, recorder: SweepRecorder) -> None:
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
