"""Reading a sweep back from MLflow: its parent run and one record per trial.

The report (plots, leaderboard CSV) and ``sweep-report`` work from these records only,
so they show exactly what MLflow holds, for a sweep that just ended or one from last
month, local SQLite or a tracking server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from dnn_sweep.errors import TrackingError
from tracking.recorder import outcome_tag

# Learning curves read back per trial (step = epoch), besides the objective's.
CURVES = ("val_loss", "loss")
# Where the final phase's re-check table lives on the parent run.
RECHECK_TABLE = "recheck/table.csv"
# Sweeps recorded before objectives were configurable optimized this.
DEFAULT_OBJECTIVE = ("val_accuracy", "max")


@dataclass
class TrialRecord:
    """One trial as MLflow recorded it."""

    run_id: str
    name: str
    status: str  # trial_status tag: completed / pruned / failed / ...
    params: dict[str, str]
    started: float  # seconds since the epoch
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    objective: tuple[str, str] = DEFAULT_OBJECTIVE  # (metric, mode) of the sweep

    @property
    def best(self) -> float:
        """The trial's best value of the sweep's objective (NaN: no epoch)."""
        metric, mode = self.objective
        values = [v for _, v in self.curves.get(metric, []) if math.isfinite(v)]
        if not values:
            return math.nan
        return min(values) if mode == "min" else max(values)

    @property
    def epochs(self) -> int:
        return max((len(curve) for curve in self.curves.values()), default=0)

    def last(self, metric: str) -> float:
        curve = self.curves.get(metric, [])
        return curve[-1][1] if curve else math.nan


@dataclass
class SweepRecord:
    """A sweep's parent run and its trials, oldest trial first."""

    experiment_id: str
    parent_run_id: str
    parent_status: str
    metrics: dict[str, float]
    trials: list[TrialRecord]
    objective: tuple[str, str] = DEFAULT_OBJECTIVE
    # The final phase's re-check table (recheck/table.csv), one dict per config; [] if none.
    recheck: list[dict[str, str]] = field(default_factory=list)
    # The stored Optuna study the sweep asked: (study name, RDB storage URL), or None.
    study: tuple[str, str] | None = None


def load_sweep(
    tracking_uri: str,
    name: str,
    parent_run_id: str | None = None,
    curves: bool = True,
    objective: tuple[str, str] | None = None,
) -> SweepRecord:
    """The newest sweep of experiment ``name`` (or the one with ``parent_run_id``).
    ``objective`` (metric, mode): what ranks its trials; by default what the parent
    run recorded (``objective.metric`` / ``objective.mode``).

    Raises:
        TrackingError: no such experiment or sweep, or the backend cannot be read.
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        exp = client.get_experiment_by_name(name)
    except Exception as exc:  # noqa: BLE001 - any backend failure is a tracking error
        raise TrackingError(
            f"tracking.uri={tracking_uri}: cannot read MLflow ({type(exc).__name__})"
        ) from exc
    if exp is None:
        known = sorted(e.name for e in client.search_experiments() if e.name != "Default")
        raise TrackingError(
            f"name={name}: no sweep of that name in {tracking_uri}; known sweeps: "
            f"{', '.join(known) or 'none'}"
        )
    parent = _parent(client, exp.experiment_id, name, parent_run_id)
    if objective is None:
        params = parent.data.params
        objective = (
            params.get("objective.metric", DEFAULT_OBJECTIVE[0]),
            params.get("objective.mode", DEFAULT_OBJECTIVE[1]),
        )
    children = child_runs(client, exp.experiment_id, parent.info.run_id)
    trials = [_record(client, run, objective, curves) for run in children]
    return SweepRecord(
        experiment_id=exp.experiment_id,
        parent_run_id=parent.info.run_id,
        parent_status=parent.info.status,
        metrics=dict(parent.data.metrics),
        trials=trials,
        objective=objective,
        recheck=_recheck_table(client, parent.info.run_id),
        study=_study(parent.data.params),
    )


def _study(params: dict[str, str]) -> tuple[str, str] | None:
    name, storage = params.get("study.name"), params.get("study.storage")
    return (name, storage) if name and storage else None


def _recheck_table(client: MlflowClient, run_id: str) -> list[dict[str, str]]:
    """The parent run's recheck/table.csv as rows ([] when the sweep re-checked nothing)."""
    if not any(a.path == RECHECK_TABLE for a in client.list_artifacts(run_id, "recheck")):
        return []
    import csv
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        text = Path(client.download_artifacts(run_id, RECHECK_TABLE, folder)).read_text()
    return list(csv.DictReader(text.splitlines()))


def parent_runs(client: MlflowClient, experiment_id: str, newest: int = 1000) -> list[Any]:
    """The sweep parent runs of an experiment, newest first (one per sweep, whatever
    resumes and added trials it had)."""
    return client.search_runs(
        [experiment_id],
        filter_string="tags.`sweep.role` = 'parent'",
        order_by=["attributes.start_time DESC"],
        max_results=newest,
    )


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list[Any]:
    """The trial runs nested under a sweep's parent, oldest first."""
    children = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'",
        max_results=50000,
    )
    return sorted(children, key=lambda r: r.info.start_time)


def newest_sweep_runs(client: MlflowClient, experiment: str) -> tuple[Any, list[Any]]:
    """(parent run, trial runs oldest first) of experiment ``experiment``'s newest sweep.

    Raises:
        TrackingError: no such experiment, or no sweep in it.
    """
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise TrackingError(f"name={experiment}: no sweep of that name")
    parent = _parent(client, exp.experiment_id, experiment, None)
    return parent, child_runs(client, exp.experiment_id, parent.info.run_id)


def _parent(client: MlflowClient, experiment_id: str, name: str, run_id: str | None) -> Any:
    """The parent run ``run_id``, or the newest sweep parent of the experiment.

    Raises:
        TrackingError: the experiment holds no sweep parent run.
    """
    if run_id is not None:
        return client.get_run(run_id)
    parents = parent_runs(client, experiment_id, newest=1)
    if not parents:
        raise TrackingError(f"name={name}: the experiment holds no sweep parent run")
    return parents[0]


def _record(
    client: MlflowClient, run: Any, objective: tuple[str, str], curves: bool
) -> TrialRecord:
    """One trial's record: its params and status, with its learning curves if asked."""
    record = TrialRecord(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id,
        status=outcome_tag(run.data.tags.get("trial_status", run.info.status.lower())),
        params=dict(run.data.params),
        started=run.info.start_time / 1000,
        objective=objective,
    )
    if curves:
        for metric in dict.fromkeys((objective[0], *CURVES)):
            history = client.get_metric_history(run.info.run_id, metric)
            record.curves[metric] = sorted((m.step, m.value) for m in history)
    return record


def leaderboard(trials: list[TrialRecord]) -> list[dict[str, Any]]:
    """All trials ranked by their best objective (trials without any epoch last), one
    row each: rank, trial, status, epochs, best/last metrics, then every param."""
    ranked = sorted(trials, key=lambda t: (_rank_key(t), t.started))
    names = sorted({k for t in trials for k in t.params})
    rows = []
    for i, t in enumerate(ranked, 1):
        metric = t.objective[0]
        row: dict[str, Any] = {
            "rank": i,
            "trial": t.name,
            "status": t.status,
            "epochs": t.epochs,
            f"best_{metric}": t.best,
            f"last_{metric}": t.last(metric),
            "last_val_loss": t.last("val_loss"),
            "run_id": t.run_id,
        }
        row.update({f"param.{k}": t.params.get(k, "") for k in names})
        rows.append(row)
    return rows


def _rank_key(t: TrialRecord) -> float:
    """Ascending: the best trial first, trials without a value last."""
    if math.isnan(t.best):
        return math.inf
    return t.best if t.objective[1] == "min" else -t.best
