"""Ray Tune callbacks: the bridge from Tune's trial events to the sweep recorder.

Tune pickles its callbacks into the experiment folder (``tuner.pkl``) and unpickles them
on ``Tuner.restore``; these hold no open resources in their pickled state and find the
driver's live recorder through ``bind`` instead.
"""

from __future__ import annotations

import os
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from dnn_sweep.errors import SweepError
from search.pbt import flat
from tracking.buffer import Buffered
from tracking.recorder import SweepRecorder, TrialOutcome

# Per-epoch values besides Keras' metrics: the learning rate and momentum in force, and
# where a trial's time goes besides training (see search/tune_trial.py).
EPOCH_EXTRAS = (
    "n_params",
    "latency_ms",
    "lr",
    "momentum",
    "epoch_seconds",
    "setup_seconds",
    "checkpoint_seconds",
    "report_seconds",
)


def epoch_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The learning-curve values of a Tune result: every validation metric Keras
    reported and its training twin (``loss``/``val_loss``, ``auc``/``val_auc``,
    ``rmse``/``val_rmse``..., also a user model's own), plus ``EPOCH_EXTRAS``."""
    out = {}
    for key, value in result.items():
        wanted = key in EPOCH_EXTRAS or key.startswith("val_") or f"val_{key}" in result
        if wanted and isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    return out


# Set by the trainable on the first report after PBT gave it another trial's weights and
# new params (JSON): the trial's run keeps its first params and gets these as a tag.
NEW_PARAMS = "pbt_new_params"

# Set by the trainable on the report of its last epoch (max_epochs or patience reached).
FINISHED_FLAG = "trial_finished"
# On the first report after a resume: the metrics of the epoch it resumed from.
RESTORED_METRICS = "restored_epoch_metrics"

_RECORDER: list[Buffered] = []
# How long the driver waits, once the trials have ended, for records a tracking hiccup
# held back (MLflow's own HTTP retries come first: up to ~2 minutes a call).
FLUSH_S = 120.0


def bind(recorder: SweepRecorder) -> None:
    """Make ``recorder`` the one every MLflowTrialCallback in this process writes to,
    through a queue that outlives transient tracking errors (tracking/buffer.py)."""
    _RECORDER[:] = [Buffered(recorder)]


def flush_records(wait_s: float = FLUSH_S) -> None:
    """Write what the callbacks queued; raise SweepError (exit 1, resumable) naming the
    tracking error when it cannot be written within ``wait_s``."""
    if not _RECORDER or _RECORDER[0].flush(wait_s):
        return
    held = _RECORDER[0]
    raise SweepError(
        f"{held.pending} trial record(s) could not be written to MLflow in {wait_s:.0f} s "
        f"({held.last_error}); the trials are kept: `sweep resume=true` with the same "
        "name records them once the tracking store answers"
    )


def trial_label(trial: Trial) -> str:
    """Short, stable run name: the Tune trial id."""
    return f"trial-{trial.trial_id}"


def trial_params(trial: Trial) -> dict[str, Any]:
    """The hyperparameters a trial was given (sampled + constant), sorted for display."""
    return dict(sorted(flat(trial.config).items()))


def error_text(trial: Trial) -> str:
    """The trial's error trace: Tune writes it to the trial's local folder first and syncs
    it to storage later, so read the local file when it is there."""
    path = getattr(trial, "error_file", None)
    if path and os.path.isfile(path):
        with open(path) as f:
            return f.read()
    error = trial.get_error()
    return str(error) if error is not None else "trial failed (no error recorded)"


def outcome_of(last_result: dict[str, Any] | None, errored: bool) -> tuple[TrialOutcome, str]:
    """How a trial ended, from its last result: completed / pruned / failed."""
    last = last_result or {}
    if errored:
        return TrialOutcome.FAILED, "error"
    if last.get(FINISHED_FLAG):
        return TrialOutcome.COMPLETED, str(last.get("stop_reason", "max_epochs"))
    return TrialOutcome.PRUNED, "scheduler"


class MLflowTrialCallback(Callback):
    """Opens a nested MLflow run per trial, logs each epoch, closes it with its outcome.

    Runs in the driver process (Tune calls callbacks there), so MLflow has one writer.
    """

    def __init__(self, recorder: SweepRecorder | None = None) -> None:
        if recorder is not None:
            bind(recorder)

    @property
    def recorder(self) -> Any:  # a Buffered SweepRecorder
        if not _RECORDER:
            raise RuntimeError("no sweep recorder bound in this process")
        return _RECORDER[0]

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        pass

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self.recorder.start_trial(trial.trial_id, trial_label(trial), trial_params(trial))

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ):
        if result.get(NEW_PARAMS):  # PBT: the curve goes on from the donor's epoch
            self.recorder.rewind(trial.trial_id, int(result["resumed_from_epoch"]))
        if result.get(RESTORED_METRICS):  # a no-op when that epoch is recorded already
            restored = epoch_metrics(result[RESTORED_METRICS])
            self.recorder.log_epoch(trial.trial_id, restored, int(result["resumed_from_epoch"]))
        metrics = epoch_metrics(result)
        step = int(result.get("epoch", result["training_iteration"]))
        self.recorder.log_epoch(trial.trial_id, metrics, step=step)
        tags = {
            k: str(result[k])
            for k in (
                "tf_threads",
                "gpu_setup",
                "resumed_from_epoch",
                "worker_pid",
                "entered_at",
                "tensorboard_dir",
            )
            if k in result
        }
        if result.get(NEW_PARAMS):
            tags[f"pbt.params_from_epoch_{int(result['resumed_from_epoch']) + 1}"] = result[
                NEW_PARAMS
            ][:5000]
        if "node_id" in result:
            self.recorder.add_node(trial.trial_id, str(result["node_id"]))
        if tags:
            self.recorder.tag_trial(trial.trial_id, tags)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        outcome, reason = outcome_of(trial.last_result, errored=False)
        epochs = int((trial.last_result or {}).get("epoch", 0))
        self.recorder.end_trial(
            trial.trial_id, outcome, tags={"stop_reason": reason, "epochs": str(epochs)}
        )

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self.recorder.tag_trial(trial.trial_id, {"retried": "true"})

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        message = error_text(trial)
        # A trial can fail before it ever started (e.g. its worker could not be set up):
        # it still gets its run, so no trial is missing from MLflow.
        self.recorder.start_trial(trial.trial_id, trial_label(trial), trial_params(trial))
        epochs = int((trial.last_result or {}).get("epoch", 0))
        self.recorder.end_trial(
            trial.trial_id,
            TrialOutcome.FAILED,
            error=message,
            tags={"stop_reason": "error", "epochs": str(epochs)},
        )
