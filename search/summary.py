"""What a finished sweep produced, read back from its MLflow parent run: the one way a
summary is made, for a sweep that just ended, one resumed after a kill, or one that had
already finished."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search.progress import format_params
from tracking.recorder import outcome_counts, param_value

# Tags the final phase leaves on the parent run, step by step, so a resume does each
# step once: the registered model's URI, and that the report was written.
MODEL_TAG = "sweep.model_uri"
REPORT_TAG = "sweep.report"
BEST_TRIAL_TAG = "sweep.best_trial"


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


def _members(tags: dict[str, str], best_trial: str) -> tuple[tuple[str, float], ...]:
    text = tags.get("ensemble.members")
    if not text:
        return ((best_trial, 1.0),)
    pairs = (item.rsplit(":", 1) for item in text.split(","))
    return tuple((label, float(weight)) for label, weight in pairs)


def from_parent(run: Any, name: str, tracking_uri: str, seconds: float) -> SweepSummary:
    """The summary of a sweep whose final phase is recorded on its parent ``run``."""
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    metric = params.get("objective.metric", "val_accuracy")
    best_trial = tags.get(BEST_TRIAL_TAG, "?")
    prefix = "best_trial_test_"
    return SweepSummary(
        name=name,
        experiment_id=run.info.experiment_id,
        parent_run_id=run.info.run_id,
        trials=outcome_counts(metrics),
        best_params={
            k[5:]: param_value(v) for k, v in sorted(tags.items()) if k.startswith("best.")
        },
        best_trial=best_trial,
        task=params.get("task", "multiclass"),
        objective=metric,
        mode=params.get("objective.mode", "max"),
        best_value=float(metrics.get(f"best_{metric}", float("nan"))),
        test={k[5:]: v for k, v in metrics.items() if k.startswith("test_")},
        model_uri=tags.get(MODEL_TAG, ""),
        tracking_uri=tracking_uri,
        seconds=seconds,
        members=_members(tags, best_trial),
        best_trial_test={k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)},
    )


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
    page = f"#/experiments/{s.experiment_id}/runs?workflowType=machine_learning"
    ui = (
        f"mlflow ui --backend-store-uri {s.tracking_uri}  -> open http://127.0.0.1:5000/{page}"
        if not s.tracking_uri.startswith("http")
        else f"{s.tracking_uri.rstrip('/')}/{page}"
    )
    return "\n".join(
        [
            f"Sweep '{s.name}' done in {s.seconds:.0f} s: {sum(c.values())} trials "
            f"({c['completed']} completed, {c['pruned']} pruned, "
            f"{c['failed']} failed)",
            f"Best {s.best_trial}: {s.objective} {s.best_value:.4f} ({s.task}, "
            f"{s.mode}); {_fmt_scores(s.best_trial_test)}",
            f"  params: {format_params(s.best_params)}",
            *_ensemble_lines(s),
            f"MLflow: experiment '{s.name}' (id {s.experiment_id}), parent run {s.parent_run_id}",
            f"Model:  {s.model_uri} (TensorFlow SavedModel, registered)",
            # workflowType: MLflow 3's UI opens an experiment in its GenAI view otherwise
            f"Compare runs: {ui}",
        ]
    )
