"""What a model costs to serve: its size and its inference time per example.

Objectives besides the validation score (``objectives=[val_accuracy:max, n_params:min]``):
measured once per trial on the trial's own worker, from the model it trains.
"""

from __future__ import annotations

import time
from typing import Any

# The cost objectives a sweep may minimize, beside the task's validation metrics.
COSTS = ("n_params", "latency_ms")


def model_costs(model: Any, data: Any, rows: int = 256, repeats: int = 5) -> dict[str, float]:
    """``n_params`` (weights, trainable or not) and ``latency_ms``: the best of
    ``repeats`` timed forward passes over ``rows`` validation rows, per example (after one
    untimed pass that builds the graph)."""
    x, _ = data.head(rows)
    n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    model(x, training=False)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model(x, training=False)
        best = min(best, time.perf_counter() - start)
    return {"n_params": float(model.count_params()), "latency_ms": 1000.0 * best / max(n, 1)}
