"""MLflow side of dnn-sweep: one parent run per sweep, one nested run per trial.

Knows nothing of Keras internals or Ray: it records plain dicts of params and metrics,
and logs a model object through MLflow's Keras flavor.
"""

from tracking.recorder import SweepRecorder, TrackingError, TrialOutcome

__all__ = ["SweepRecorder", "TrackingError", "TrialOutcome"]
