"""SweepRecorder: writes a sweep's runs to MLflow from one process (the driver).

One writer keeps a SQLite backend safe (no lock contention between trials) and keeps
MLflow out of the trials' hot path. Everything goes through ``MlflowClient`` with an
explicit tracking URI: no global "active run" state shared between threads.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from dnn_sweep.errors import TrackingError, reason
from tracking.registry import (
    INPUTS_TAG,
    ROUND_TAG,
    HeldOutScore,
    Registered,
    log_logged_model,
    promote,
    register,
    version_of,
)
from tracking.secrets import mask, mask_mapping, mask_tree

# Tag telling the MLflow 3 UI that this is classic model training, not GenAI.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
MAX_PARAM_LEN = 6000


class TrialOutcome(enum.Enum):
    """How a trial ended, as the tag ``trial_status`` and the MLflow run status: the one
    vocabulary of tags, progress lines, the report and the README.

    - ``completed``: trained to its end: ``max_epochs``, or its own early stopping by
      patience (tag ``stop_reason`` says which);
    - ``pruned``: cut by the scheduler (ASHA, Hyperband, median stopping) or by the end
      of ``time_budget_s`` (Optuna's word for a trial stopped from outside);
    - ``failed``: raised an error (tag ``error``).
    """

    COMPLETED = ("completed", "FINISHED")
    PRUNED = ("pruned", "KILLED")
    FAILED = ("failed", "FAILED")

    @property
    def tag(self) -> str:
        return self.value[0]

    @property
    def run_status(self) -> str:
        return self.value[1]


# Words of the vocabulary that earlier versions recorded, and what they mean now: records
# of sweeps run before the rename read as today's (tags and parent counts alike).
LEGACY_OUTCOMES = {"stopped_early": TrialOutcome.PRUNED.tag}


def outcome_tag(tag: str) -> str:
    """A recorded ``trial_status`` in today's vocabulary."""
    return LEGACY_OUTCOMES.get(tag, tag)


def outcome_counts(metrics: dict[str, float]) -> dict[str, int]:
    """A parent run's ``trials_<outcome>`` counts, in today's vocabulary."""
    counts = {o.tag: 0 for o in TrialOutcome}
    for old, new in (*((o.tag, o.tag) for o in TrialOutcome), *LEGACY_OUTCOMES.items()):
        counts[new] += int(metrics.get(f"trials_{old}", 0))
    return counts


def _param_value(value: Any) -> str:
    return mask(value)[:MAX_PARAM_LEN]


def param_value(text: str) -> Any:
    """An MLflow param (a string) back as the value it was (bool, int, float or str)."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def artifact_root(tracking_uri: str) -> str | None:
    """Where a new experiment's artifacts go: beside a SQLite file (``mlruns/`` in its
    folder), so records and artifacts stay together whatever folder a sweep runs from;
    None (the server's or MLflow's default) for any other backend."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return (Path(tracking_uri[len(prefix) :]).resolve().parent / "mlruns").as_uri()


@dataclass(frozen=True)
class TrialEnd:
    """How a trial ended, as Tune's own records say (what ``reconcile`` makes MLflow
    agree with)."""

    trial_id: str
    name: str
    params: dict[str, Any]
    outcome: TrialOutcome
    reason: str  # stop_reason: max_epochs / patience / scheduler / error
    epochs: int
    error: str | None = None
    retried: bool = False  # Tune restarted it after a failure (its worker or node lost)


@dataclass(frozen=True)
class DatasetRecord:
    """One split of a sweep's data, as MLflow records a dataset input."""

    name: str
    digest: str
    split: str  # train / val / test: the input's context
    rows: int
    inputs: str  # what one row is, in words


class SweepRecorder:
    """Records one sweep: a parent run, and a nested child run per trial."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        import os

        # MLflow draws a progress bar for every artifact it copies (model, report)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self._trial_runs: dict[str, str] = {}  # open child runs, by trial id
        self._all_runs: dict[str, str] = {}  # every child run of this sweep, by trial id
        self._last_step: dict[str, int] = {}
        self._unlogged: set[str] = set()  # child runs created, params not yet logged
        self._nodes: dict[str, set[str]] = {}

    def attach(self, parent_run_id: str) -> None:
        """Continue recording into an existing sweep (``sweep resume=true``): reopen the
        parent and map its child runs back to their trials, so no trial gets a second run
        and no epoch is logged twice."""
        parent = self.parent(parent_run_id)
        self.experiment_id = parent.info.experiment_id
        self.parent_run_id = parent_run_id
        if parent.info.status != "RUNNING":
            self.client.update_run(parent_run_id, status="RUNNING")
        children = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'",
            max_results=10000,
        )
        for run in children:
            trial_id = run.data.tags.get("trial_id")
            if trial_id is None:
                continue
            self._all_runs[trial_id] = run.info.run_id
            if run.info.status == "RUNNING":
                self._trial_runs[trial_id] = run.info.run_id
            history = self.client.get_metric_history(run.info.run_id, "loss")
            self._last_step[trial_id] = max((m.step for m in history), default=0)
            nodes = run.data.tags.get("nodes")
            self._nodes[trial_id] = set(nodes.split(",")) if nodes else set()

    def parent(self, run_id: str | None = None) -> Any:
        """The sweep's parent run as MLflow holds it now (params, metrics, tags, status).

        Raises:
            TrackingError: no such run in this backend.
        """
        run_id = run_id or self.parent_run_id
        assert run_id is not None
        try:
            return self.client.get_run(run_id)
        except Exception as exc:  # noqa: BLE001
            raise TrackingError(
                f"tracking.uri={self.tracking_uri}: the sweep's parent run {run_id} is not "
                f"there ({type(exc).__name__})"
            ) from exc

    # -- sweep ------------------------------------------------------------------------
    def start_sweep(
        self, params: Mapping[str, Any], tags: Mapping[str, str], config_yaml: str
    ) -> str:
        """Create (or reuse) the experiment and open the sweep's parent run.

        Raises:
            TrackingError: when the backend cannot be reached or written.
        """
        self.parent_run_id = self.start_run(
            f"sweep-{time.strftime('%Y%m%d-%H%M%S')}", {**tags, "sweep.role": "parent"}, params
        )
        try:  # the first artifact: where an artifact store the server cannot write shows
            self.client.log_text(self.parent_run_id, mask(config_yaml), "config.yaml")
        except Exception as exc:  # noqa: BLE001 - any backend failure is a tracking error
            with contextlib.suppress(Exception):  # no RUNNING parent left behind
                self.client.set_terminated(self.parent_run_id, "FAILED")
            raise TrackingError(
                f"tracking.uri={mask(self.tracking_uri)}: cannot store the sweep's artifacts "
                f"there ({type(exc).__name__}: {reason(exc)})"
            ) from exc
        return self.parent_run_id

    def start_run(self, name: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> str:
        """Open a top-level run in the experiment (created on first use)."""
        self._ensure_experiment()
        assert self.experiment_id is not None
        run = self.client.create_run(self.experiment_id, run_name=name, tags=mask_mapping(tags))
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def _ensure_experiment(self) -> None:
        if self.experiment_id is not None:
            return
        try:
            exp = self.client.get_experiment_by_name(self.experiment_name)
            if exp is None:
                self.experiment_id = self.client.create_experiment(
                    self.experiment_name,
                    artifact_location=artifact_root(self.tracking_uri),
                    tags=EXPERIMENT_KIND,
                )
            else:
                if exp.lifecycle_stage == "deleted":
                    raise TrackingError(
                        f"name={self.experiment_name}: an MLflow experiment of that name is "
                        "deleted; restore it (mlflow experiments restore) or pick another name"
                    )
                self.experiment_id = exp.experiment_id
        except TrackingError:
            raise
        except Exception as exc:  # noqa: BLE001 - any backend failure is a tracking error
            raise TrackingError(
                f"tracking.uri={self.tracking_uri}: cannot use MLflow there "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            ) from exc

    def finish_sweep(
        self, metrics: Mapping[str, float], params: Mapping[str, Any], status: str = "FINISHED"
    ) -> None:
        """Log the sweep's results to the parent run and close it (and any open child)."""
        assert self.parent_run_id is not None
        self.close_open_trials("interrupted")
        if params:
            self.log_params(self.parent_run_id, params)
        if metrics:
            self.log_metrics(self.parent_run_id, metrics)
        self.client.set_terminated(self.parent_run_id, status=status)

    # -- trials -----------------------------------------------------------------------
    def start_trial(self, trial_id: str, name: str, params: Mapping[str, Any]) -> str:
        """Open a child run nested under the parent, with the trial's params."""
        assert self.experiment_id is not None and self.parent_run_id is not None
        if trial_id in self._trial_runs:
            return self._trial_runs[trial_id]
        if trial_id in self._all_runs and trial_id not in self._unlogged:
            run_id = self._all_runs[trial_id]  # a trial that continues (resume): reopened
            self.client.update_run(run_id, status="RUNNING")
            self._set_tag(run_id, "trial_status", "running")
            self._trial_runs[trial_id] = run_id
            return run_id
        if trial_id not in self._all_runs:
            self._all_runs[trial_id] = self._create_trial_run(trial_id, name)
            self._unlogged.add(trial_id)  # until its params are: a retry logs them
        run_id = self._all_runs[trial_id]
        self.log_params(run_id, params)
        self._unlogged.discard(trial_id)
        self._trial_runs[trial_id] = run_id
        return run_id

    def _create_trial_run(self, trial_id: str, name: str) -> str:
        assert self.experiment_id is not None and self.parent_run_id is not None
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags=mask_mapping(
                {
                    MLFLOW_PARENT_RUN_ID: self.parent_run_id,
                    MLFLOW_RUN_NAME: name,
                    "sweep.role": "trial",
                    "trial_id": trial_id,
                    "trial_status": "running",
                }
            ),
        )
        return run.info.run_id

    def log_epoch(self, trial_id: str, metrics: Mapping[str, float], step: int) -> None:
        """One point of the trial's learning curves (``step`` = epoch)."""
        run_id = self._trial_runs.get(trial_id)
        if run_id is None or step <= self._last_step.get(trial_id, 0):
            return  # an epoch already recorded (replayed after a resume)
        self.log_metrics(run_id, metrics, step=step)
        self._last_step[trial_id] = step  # after: a failed write is written again

    def rewind(self, trial_id: str, step: int) -> None:
        """The trial goes on from another's checkpoint at ``step`` (population-based
        training): its later epochs are a new branch of the curve, logged again."""
        self._last_step[trial_id] = min(step, self._last_step.get(trial_id, 0))

    def add_node(self, trial_id: str, node_id: str) -> None:
        """Record the Ray nodes a trial ran on (tag ``nodes``): a retry shows two."""
        nodes = self._nodes.setdefault(trial_id, set())
        if node_id not in nodes:
            nodes.add(node_id)
            self.tag_trial(trial_id, {"nodes": ",".join(sorted(nodes))})

    def reconcile(self, trials: list[TrialEnd]) -> None:
        """Make MLflow agree with the final trial table: one run per trial, each closed
        with its outcome, even when an event was lost (a killed driver).

        A run whose trial Tune no longer knows (the driver died after the trial started
        but before Tune's state snapshot recorded it; the resumed sweep samples a new
        trial instead) is deleted when it holds no epoch; otherwise it is kept, closed,
        tagged ``trial_status=lost`` and ``lost_from_sweep=<parent run>``, and detached
        from the parent so the sweep still shows one run per trial.
        """
        known = {t.trial_id for t in trials}
        for trial_id, run_id in list(self._all_runs.items()):
            if trial_id in known:
                continue
            self._trial_runs.pop(trial_id, None)
            self._all_runs.pop(trial_id)
            if self._last_step.get(trial_id, 0) == 0:
                self.client.delete_run(run_id)
            else:
                self._set_tag(run_id, "trial_status", "lost")
                self._set_tag(run_id, "lost_from_sweep", str(self.parent_run_id))
                self.client.delete_tag(run_id, MLFLOW_PARENT_RUN_ID)
                self.client.set_terminated(run_id, status="KILLED")
        for t in trials:
            # a retry's own event (its tag queued while the store was busy) can die with
            # a killed driver; Tune's records still count the failure
            retried = {"retried": "true"} if t.retried else {}
            if t.trial_id in self._all_runs and t.trial_id not in self._trial_runs:
                if retried:
                    self.set_tags(self._all_runs[t.trial_id], retried)
                continue  # already closed by its event
            self.start_trial(t.trial_id, t.name, t.params)
            tags = {"stop_reason": t.reason, "epochs": str(t.epochs), **retried}
            self.end_trial(t.trial_id, t.outcome, error=t.error, tags=tags)

    def end_trial(
        self,
        trial_id: str,
        outcome: TrialOutcome,
        error: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Close a child run with a status telling completed / pruned / failed."""
        run_id = self._trial_runs.get(trial_id)
        if run_id is None:
            return
        self._set_tag(run_id, "trial_status", outcome.tag)
        for k, v in (tags or {}).items():
            self._set_tag(run_id, k, v)
        if error:
            self._set_tag(run_id, "error", error[:5000])
            self.client.log_text(run_id, mask(error), "error.txt")
        self.client.set_terminated(run_id, status=outcome.run_status)
        del self._trial_runs[trial_id]  # last: a failed write is tried again whole

    def close_open_trials(self, why: str) -> None:
        """Mark trials still open (the sweep was interrupted) as KILLED, never RUNNING."""
        for trial_id, run_id in list(self._trial_runs.items()):
            self._set_tag(run_id, "trial_status", why)
            self.client.set_terminated(run_id, status="KILLED")
            self._trial_runs.pop(trial_id)

    def log_nested(
        self,
        trial_id: str,
        name: str,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
        curve: list[Mapping[str, float]],
        metrics: Mapping[str, float],
        failed: bool = False,
    ) -> str:
        """A whole run nested under trial ``trial_id``'s run (under the parent when the
        trial has none): work done for that trial after the search (a re-check, a
        refit), logged in one go once it ended so no run is left open by a kill.
        ``curve`` holds one dict of metrics per epoch (key ``epoch`` = the step)."""
        assert self.experiment_id is not None and self.parent_run_id is not None
        under = self._all_runs.get(trial_id, self.parent_run_id)
        run = self.client.create_run(
            self.experiment_id,
            run_name=name,
            tags=mask_mapping({**tags, MLFLOW_PARENT_RUN_ID: under, MLFLOW_RUN_NAME: name}),
        )
        run_id = run.info.run_id
        self.log_params(run_id, params)
        now = int(time.time() * 1000)
        points = [
            Metric(str(k), float(v), now, int(row.get("epoch", i + 1)))
            for i, row in enumerate(curve)
            for k, v in row.items()
            if k != "epoch"
        ]
        points += [Metric(str(k), float(v), now, 0) for k, v in metrics.items()]
        for i in range(0, len(points), 1000):
            self.client.log_batch(run_id, metrics=points[i : i + 1000])
        self.client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")
        return run_id

    def tag_trial(self, trial_id: str, tags: Mapping[str, str]) -> None:
        run_id = self._trial_runs.get(trial_id)
        if run_id is not None:
            self.set_tags(run_id, tags)

    def log_datasets(self, datasets: list[DatasetRecord]) -> None:
        """The data the sweep used, as dataset inputs of the parent run (the UI's
        Dataset column): one per split, with its digest and row count."""
        import json

        from mlflow.entities import Dataset, DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        assert self.parent_run_id is not None
        inputs = [
            DatasetInput(
                Dataset(
                    name=d.name,
                    digest=d.digest,
                    source_type="local",
                    source=json.dumps({"dataset": d.name}),
                    schema=json.dumps({"inputs": d.inputs}),
                    profile=json.dumps({"num_rows": d.rows}),
                ),
                tags=[InputTag(MLFLOW_DATASET_CONTEXT, d.split)],
            )
            for d in datasets
        ]
        self.client.log_inputs(self.parent_run_id, datasets=inputs)

    # -- low level --------------------------------------------------------------------
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        items = [Param(str(k), _param_value(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(str(k), float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(run_id, metrics=batch)

    def log_series(self, run_id: str, name: str, values: list[float]) -> None:
        """A metric curve with step = 0, 1, 2, ... (MLflow caps a batch at 1000)."""
        now = int(time.time() * 1000)
        batch = [Metric(name, float(v), now, i) for i, v in enumerate(values)]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[i : i + 1000])

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        self.client.log_figure(run_id, figure, artifact_file)

    def log_artifacts(self, run_id: str, folder: str, artifact_path: str) -> None:
        self.client.log_artifacts(run_id, folder, artifact_path)

    def log_dict(self, run_id: str, data: Mapping[str, Any], artifact_file: str) -> None:
        self.client.log_dict(run_id, mask_tree(data), artifact_file)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def delete_tags(self, run_id: str, keys: list[str]) -> None:
        """Remove these tags of a run (those it has)."""
        present = self.client.get_run(run_id).data.tags
        for key in keys:
            if key in present:
                self.client.delete_tag(run_id, key)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        for k, v in mask_mapping(tags).items():
            self.client.set_tag(run_id, k, v)

    def _set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.set_tags(run_id, {key: value})

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, mask(text), artifact_file)

    def log_model(
        self,
        save: Callable[[str, Any], None],
        registered_model: str,
        round_: int = 1,
        inputs_digest: str | None = None,
        score: HeldOutScore | None = None,
    ) -> Registered:
        """Log the sweep's model as a LoggedModel of the parent run (``model``, or
        ``model-round-N`` for the final phase after the Nth set of trials), register it
        as a new version of ``registered_model`` and move its aliases (see
        ``tracking.registry``); ``save(path, mlflow_model)`` writes the model folder (see
        ``tracking.models``). A resumed final phase finds the version this parent
        registered for that round already. All through this recorder's client, so no
        process-wide MLflow state is touched."""
        run_id = self.parent_run_id
        assert run_id is not None
        version = version_of(self.client, registered_model, run_id, round_)
        if version is None:
            name = "model" if round_ == 1 else f"model-round-{round_}"
            tags = {ROUND_TAG: str(round_), **(score.tags() if score else {})}
            if inputs_digest:
                tags[INPUTS_TAG] = inputs_digest
            logged = log_logged_model(self.client, run_id, name, save, tags)
            number = register(self.client, registered_model, logged, tags)
            version = self.client.get_model_version(registered_model, number)
        note = version.tags.get("champion.decision") or promote(
            self.client, registered_model, str(version.version), score
        )
        return Registered(uri=f"models:/{registered_model}/{version.version}", note=note)


def latest_lr_suggestion(tracking_uri: str, experiment: str) -> float | None:
    """The suggested learning rate of the newest finished lr-finder run of ``experiment``."""
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        exp = client.get_experiment_by_name(experiment)
    except Exception as exc:  # noqa: BLE001
        raise TrackingError(f"tracking.uri={tracking_uri}: cannot read MLflow ({exc})") from exc
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string="tags.`sweep.role` = 'lr_find' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs or "suggested_lr" not in runs[0].data.metrics:
        return None
    return float(runs[0].data.metrics["suggested_lr"])
