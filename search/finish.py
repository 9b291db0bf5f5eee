"""The final phase of a sweep, after its trials: choose the model, score it once on the
test split, log and register it, write the report, prune checkpoints, close the parent.

Each step leaves a mark on the parent run (``summary.MODEL_TAG``, ``REPORT_TAG``) as it
completes, and is skipped when its mark is there: a sweep killed during this phase, or
resumed after it had finished, never scores twice, registers a second version of the
same model or writes a second report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from dnn_sweep.errors import NoResultError
from search.arms import ARMS_TABLE, compare_arms
from search.final_model import FinalModel, Ranked, final_model, led_by, ranked_trials
from search.pareto import choose, front, points, write
from search.pbt import flat
from search.recheck import (
    Checked,
    fresh_seeds,
    optimism_gap,
    pick,
    recheck_jobs,
    refit_epochs,
    summarize,
    table,
)
from search.retention import prune
from search.retrain import Done, Job, Options, load_model, run_jobs
from search.summary import BEST_TRIAL_TAG, MODEL_TAG, REPORT_TAG, SweepSummary, from_parent
from tracking.recorder import SweepRecorder
from tracking.registry import HeldOutScore, Registered
from tracking.runs import RECHECK_TABLE

# What the logged model needs to be served; given explicitly because MLflow's
# requirement inference costs seconds per log_model call.
MODEL_REQUIREMENTS = ["tensorflow>=2.21", "keras>=3.15", "numpy", "pandas"]

Say = Callable[[str], None]


def finish(
    plan: Any,
    recorder: SweepRecorder,
    results: Any,
    counts: dict[str, int],
    started: float,
    driver_cpu: float,
    say: Say = print,
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
        final_started = time.monotonic()
        _choose_score_register(plan, recorder, results, best, say)
        recorder.log_metrics(
            recorder.parent_run_id, {"final_phase_seconds": time.monotonic() - final_started}
        )
    if REPORT_TAG not in tags:
        _log_report(plan, recorder)
        recorder.set_tags(recorder.parent_run_id, {REPORT_TAG: "report/"})
    prune(results, plan.objective, settings.checkpoint_keep)
    recorder.finish_sweep(
        metrics={
            "trials_completed": counts["completed"],
            "trials_pruned": counts["pruned"],
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
    plan: Any, recorder: SweepRecorder, results: Any, best: tuple[str, Any, float, dict], say: Say
) -> None:
    """The registered model (chosen trial or ensemble, re-checked and refit as the
    settings say), its test metrics (the test split's one reading), logged; then the
    model logged, registered and marked on the parent."""
    settings, objective = plan.settings, plan.objective
    ranked = led_by(ranked_trials(results, objective), best[0])
    checked = _recheck(plan, recorder, ranked, say) if settings.recheck_top_k else []
    if plan.source is not None:
        _compare_arms(plan, recorder, ranked, checked, say)
    pool = led_by(ranked, pick(checked, objective).trial.trial_id) if checked else ranked
    final = final_model(
        pool[: settings.ensemble_candidates], plan.data, objective, settings.ensemble_size
    )
    for line in final.dropped:
        say(f"  ensemble: left out {line} (its checkpoint did not load)")
    if settings.refit:
        final = _refit(plan, recorder, final, checked, say)
    test, alone = _scores(plan, final)
    metrics = {f"best_{objective.metric}": best[2], **{f"test_{k}": v for k, v in test.items()}}
    metrics |= {f"best_trial_test_{k}": v for k, v in alone.items()}
    # tags, not params: a resume that adds trials may find another best (params are
    # write-once in MLflow)
    tags = {f"best.{k}": str(v) for k, v in pool[0].params.items()}
    if len(final.members) > 1:
        metrics |= {
            f"ensemble_{objective.metric}": final.val_score,
            "ensemble_members": len(final.members),
        }
        tags["ensemble.members"] = ",".join(f"{t.label}:{w:.3g}" for t, w in final.members)
    assert recorder.parent_run_id is not None
    recorder.log_metrics(recorder.parent_run_id, metrics)
    recorder.set_tags(recorder.parent_run_id, tags)
    registered = _register(plan, recorder, final.model, _held_out(plan, test))
    say(f"  registered {registered.uri}; {registered.note}")
    recorder.set_tags(
        recorder.parent_run_id, {MODEL_TAG: registered.uri, BEST_TRIAL_TAG: pool[0].label}
    )


def _compare_arms(
    plan: Any, recorder: SweepRecorder, ranked: list[Ranked], checked: list[Checked], say: Say
) -> None:
    """Transfer vs from scratch (``search.arms``), when the sweep searched both."""
    metrics, rows = compare_arms(plan, ranked, checked, lambda j: _run_jobs(plan, recorder, j))
    if not rows:
        return
    assert recorder.parent_run_id is not None
    recorder.log_metrics(recorder.parent_run_id, metrics)
    recorder.log_text(recorder.parent_run_id, _csv(rows), ARMS_TABLE)
    metric = plan.objective.metric
    for row in rows:
        again = row.get(f"recheck_mean_{metric}")
        more = f", re-checked {again:.4f} over {row['recheck_seeds']} seeds" if again else ""
        say(
            f"  {row['arm']}: best {metric} {row[f'best_{metric}']:.4f}{more}; test "
            + ", ".join(f"{k[5:]} {v:.4f}" for k, v in row.items() if k.startswith("test_"))
        )


def _held_out(plan: Any, test: dict[str, float]) -> HeldOutScore | None:
    """The registered model's test score on the objective's metric, for ``@champion``."""
    objective = plan.objective
    metric = objective.metric.removeprefix("val_")
    if metric not in test:
        return None
    return HeldOutScore(metric, objective.mode, float(test[metric]), plan.data.digest("test"))


def _recheck(plan: Any, recorder: SweepRecorder, ranked: list[Ranked], say: Say) -> list[Checked]:
    """The best ``recheck.top_k`` configs (several objectives: the chosen one only)
    trained again on fresh seeds; their table, the pick and ``optimism_gap`` on the
    parent run."""
    settings, objective = plan.settings, plan.objective
    top = ranked[: settings.rechecked]
    seeds = fresh_seeds(settings.seed, settings.recheck_seeds)
    say(f"  re-check: the best {len(top)} configs on {len(seeds)} fresh seeds each")
    done = _run_jobs(plan, recorder, recheck_jobs(top, seeds, settings.max_epochs))
    checked = summarize(top, done)
    chosen = pick(checked, objective)
    winner = checked[0]  # the search's own choice
    assert recorder.parent_run_id is not None
    rows = table(checked, chosen, objective)
    recorder.log_text(recorder.parent_run_id, _csv(rows), RECHECK_TABLE)
    recorder.log_metrics(
        recorder.parent_run_id,
        {
            "optimism_gap": optimism_gap(winner, objective),
            f"recheck_mean_{objective.metric}": chosen.mean,
            f"recheck_std_{objective.metric}": chosen.std,
        },
    )
    recorder.set_tags(recorder.parent_run_id, {"recheck.pick": chosen.trial.label})
    say(
        f"  re-check: picked {chosen.trial.label} (mean {chosen.mean:.4f} over "
        f"{len(chosen.finite)} seeds); the search's winner {winner.trial.label} scored "
        f"{winner.trial.value:.4f}, re-checked {winner.mean:.4f}"
    )
    return checked


def _refit(
    plan: Any, recorder: SweepRecorder, final: FinalModel, checked: list[Checked], say: Say
) -> FinalModel:
    """The final model's members retrained on training + validation data for their
    best epoch counts, on a seed neither the trials nor the re-checks used, averaged
    with the ensemble's weights. A refit that fails leaves the model as it was (said,
    and tagged ``refit.error`` on the parent)."""
    settings = plan.settings
    seed = fresh_seeds(settings.seed, 1, skip=settings.recheck_seeds if checked else 0)[0]
    by_trial = {c.trial.trial_id: c for c in checked}
    jobs = [
        Job("refit", t.trial_id, t.params, seed, refit_epochs(t, by_trial.get(t.trial_id)))
        for t, _ in final.members
    ]
    say(f"  refit: {len(jobs)} model(s) on training + validation data ({jobs[0].epochs} epochs)")
    done = _run_jobs(plan, recorder, jobs)
    errors = [d.error for d in done if d.error]
    assert recorder.parent_run_id is not None
    if errors:
        say(f"  refit failed, the un-refit model is registered: {errors[0]}")
        recorder.set_tags(recorder.parent_run_id, {"refit.error": errors[0][:4000]})
        return final
    from trainables.ensemble import average_model

    models = [load_model(d.model) for d in done if d.model is not None]
    weights = [w for _, w in final.members]
    recorder.set_tags(
        recorder.parent_run_id, {"refit.epochs": ",".join(str(j.epochs) for j in jobs)}
    )
    return replace(final, model=average_model(models, weights), refit=True)


def _run_jobs(plan: Any, recorder: SweepRecorder, jobs: list[Job]) -> list[Done]:
    """``jobs`` as Ray tasks with a trial's resources, as many at once as trials ran;
    each recorded as a run nested under its trial's run (tag ``phase``); results in
    ``jobs``' order."""
    settings = plan.settings
    objective = (plan.objective.metric, plan.objective.mode)
    source = plan.source.saved if plan.source else None
    options = Options(
        settings.max_epochs,
        objective,
        plan.builder,
        source,
        plan.cache,
        settings.steps_per_execution,
    )
    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    order = {_key(j): i for i, j in enumerate(jobs)}
    done = []
    for d in run_jobs(jobs, plan.data, options, resources, settings.max_concurrent):
        _record_job(recorder, d)
        done.append(d)
    return sorted(done, key=lambda d: order[_key(d.job)])


def _key(job: Job) -> tuple[str, str, int]:
    return (job.phase, job.trial_id, job.seed)


def _record_job(recorder: SweepRecorder, d: Done) -> None:
    """A re-check's or refit's run, nested under its trial's run: the trial's params
    and the job's seed, its curve (step = epoch), its best value, its error if any."""
    name = f"{d.job.phase}-{d.job.trial_id}-seed{d.job.seed}"
    params = {**d.job.params, "seed": d.job.seed, "epochs": d.job.epochs}
    tags = {"phase": d.job.phase, "sweep.role": d.job.phase, "of_trial": d.job.trial_id}
    if d.error:
        tags["error"] = d.error
    final = {"best_epoch": float(d.best_epoch), "seconds": d.seconds}
    if d.job.phase == "recheck" and not d.error:
        final["best_value"] = d.best
    recorder.log_nested(d.job.trial_id, name, tags, params, d.curve, final, failed=bool(d.error))


def _csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


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
    """The registered model's test metrics, and the chosen trial's own checkpoint's
    (the same unless the registered model is an ensemble or a refit). The test split
    is read here, once per model."""
    from trainables.evaluate import score

    data, samples = plan.data, plan.settings.mc_dropout_samples
    test = score(final.model, data, "test", samples)
    if len(final.members) > 1 or final.refit:
        return test, score(final.best_trial_model, data, "test")
    return test, test


def _register(
    plan: Any, recorder: SweepRecorder, model: Any, score: HeldOutScore | None
) -> Registered:
    """Log ``model`` as the parent run's LoggedModel, a SavedModel (tables: inside a
    pyfunc that takes raw rows), register it and move its aliases."""
    import tempfile

    from tracking.models import keras_saver, table_saver
    from trainables.evaluate import predict
    from trainables.serving import ROWS, example_rows, export_table_model, output_names

    data, name = plan.data, plan.settings.registered_model
    digest = data.inputs.schema_digest()
    if data.inputs.kind != "table":
        example = example_rows(data)
        saver = keras_saver(model, example, predict(model, example), MODEL_REQUIREMENTS)
        return recorder.log_model(saver, name, plan.round, digest, score)
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
        return recorder.log_model(saver, name, plan.round, digest, score)


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
    if plan.study is not None:  # MLflow holds its URL masked: connect with the real one
        sweep = replace(sweep, study=(plan.study.name, plan.study.storage))
    with tempfile.TemporaryDirectory(prefix="dnn-sweep-report-") as tmp:
        notes = build_report(sweep, Path(tmp))
        recorder.log_artifacts(recorder.parent_run_id, tmp, "report")
    if notes:
        recorder.set_tags(recorder.parent_run_id, {"report_notes": "; ".join(notes)[:4000]})
