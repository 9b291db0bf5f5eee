"""MLflow side of dnn-sweep: one parent run per sweep, one nested run per trial.

Knows nothing of Keras internals or Ray: it records plain dicts of params and metrics,
and logs a model through MLflow's Keras flavor, or a table model's exported SavedModel
through a pyfunc wrapper (``models.py``).
"""

from tracking.recorder import SweepRecorder, TrackingError, TrialOutcome

__all__ = ["SweepRecorder", "TrackingError", "TrialOutcome"]
