"""dnn-sweep's public Python API.

    from dnn_sweep import run_sweep
    summary = run_sweep(["dataset=digits", "trials=8", "max_epochs=5"])

``run_sweep`` takes the same overrides as the ``sweep`` command (and ``config_dir``, its
``-cd``), data in memory (``x``/``y``, a DataFrame, a ``tf.data.Dataset``) and a
``build_model(params, spec)`` of your own; ``input_block`` and ``output_block`` give such a
model our input preprocessing and the task's output layer.

Names are imported on first use: ``dnn_sweep.errors``, which every side of the package
raises from, stays importable without pulling in Ray, TensorFlow or MLflow.
"""

from __future__ import annotations

import importlib
from typing import Any

from dnn_sweep.errors import (
    ConfigError,
    DataError,
    NoResultError,
    SweepError,
    TrackingError,
    UserError,
)

_LAZY = {
    "run_sweep": "search.api",
    "SweepSummary": "search.summary",
    "input_block": "trainables.blocks",
    "output_block": "trainables.blocks",
    "DataSpec": "trainables.spec",
    "InputSpec": "trainables.spec",
    "Task": "trainables.task",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'dnn_sweep' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "ConfigError",
    "DataError",
    "DataSpec",
    "InputSpec",
    "NoResultError",
    "SweepError",
    "SweepSummary",
    "Task",
    "TrackingError",
    "UserError",
    "input_block",
    "output_block",
    "run_sweep",
]
