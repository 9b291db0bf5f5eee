"""Ray Tune callbacks: the bridge from Tune's trial events to the sweep recorder."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from tracking import SweepRecorder, TrialOutcome

# Keys of a Tune result that are learning-curve metrics worth recording per epoch.
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "momentum", "epoch_seconds")
# Set by the trainable on the report of its last epoch (max_epochs or patience reached).
FINISHED_FLAG = "trial_finished"


def trial_label(trial: Trial) -> str:
    """Short, stable run name: the Tune trial id's suffix."""
    return f"trial-{trial.trial_id}"


def trial_params(trial: Trial) -> dict[str, Any]:
    """The hyperparameters a trial was given (sampled + constant), sorted for display."""
    return dict(sorted(trial.config.items()))


class MLflowTrialCallback(Callback):
    """Opens a nested MLflow run per trial, logs each epoch, closes it with its outcome.

    Runs in the driver process (Tune calls callbacks there), so MLflow has one writer.
    """

    def __init__(self, recorder: SweepRecorder) -> None:
        self.recorder = recorder

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self.recorder.start_trial(trial.trial_id, trial_label(trial), trial_params(trial))

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ):
        metrics = {k: result[k] for k in EPOCH_METRICS if k in result}
        if "tf_threads" in result:
            self.recorder.tag_trial(trial.trial_id, {"tf_threads": str(result["tf_threads"])})
        self.recorder.log_epoch(trial.trial_id, metrics, step=int(result["training_iteration"]))

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        last = trial.last_result or {}
        epochs = int(last.get("training_iteration", 0))
        if last.get(FINISHED_FLAG):
            outcome, reason = TrialOutcome.COMPLETED, last.get("stop_reason", "max_epochs")
        else:
            outcome, reason = TrialOutcome.STOPPED_EARLY, "scheduler"
        self.recorder.end_trial(
            trial.trial_id, outcome, tags={"stop_reason": str(reason), "epochs": str(epochs)}
        )

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        error = trial.get_error()
        message = str(error) if error is not None else "trial failed (no error recorded)"
        # A trial can fail before it ever started (e.g. its worker could not be set up):
        # it still gets its run, so no trial is missing from MLflow.
        self.recorder.start_trial(trial.trial_id, trial_label(trial), trial_params(trial))
        self.recorder.end_trial(trial.trial_id, TrialOutcome.FAILED, error=message)
