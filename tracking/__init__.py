"""MLflow side of dnn-sweep: one parent run per sweep, one nested run per trial.

Knows nothing of Keras internals or Ray: it records plain dicts of params and metrics,
and logs a model through MLflow's Keras flavor, or a table model's exported SavedModel
through a pyfunc wrapper (``models.py``).

Import the modules themselves (``tracking.recorder``, ...): this package imports
nothing, so a command that only checks its input (``tracking.secrets``) never pays for
importing MLflow.
"""
