"""dnn-sweep's public Python API.

    from dnn_sweep import run_sweep
    summary = run_sweep(["dataset=digits", "trials=8", "max_epochs=5"])

``run_sweep`` takes the same overrides as the ``sweep`` command (and ``config_dir``, its
``-cd``), data in memory (``x``/``y``, a DataFrame, a ``tf.data.Dataset``) and a
``build_model(params, spec)`` of your own; ``input_block`` and ``output_block`` give such a
model our input preprocessing and the task's output layer.
"""

from search.api import run_sweep
from search.errors import ConfigError, NoResultError
from search.summary import SweepSummary
from tracking.recorder import TrackingError
from trainables.blocks import input_block, output_block
from trainables.errors import DataError
from trainables.spec import DataSpec, InputSpec
from trainables.task import Task

__all__ = [
    "ConfigError",
    "DataError",
    "DataSpec",
    "InputSpec",
    "NoResultError",
    "SweepSummary",
    "Task",
    "TrackingError",
    "input_block",
    "output_block",
    "run_sweep",
]
