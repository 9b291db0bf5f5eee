"""The learning-rate finder (HOML 2e ch. 10): grow the rate exponentially, watch the loss.

Train a fresh model for ``iterations`` mini-batches while the learning rate grows from
``min_lr`` to ``max_lr`` by a constant factor per step ((max/min)^(1/iterations)), record
the loss of each batch, find where the (smoothed) loss turns back up, and suggest a rate
10x below that turning point. Reinitialize before real training: this model is spent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from trainables.data import Dataset, take
from trainables.params import resolve
from trainables.train import build_context

SMOOTHING = 0.98  # exponential moving average of the batch loss (bias-corrected)
DIVERGENCE = 4.0  # stop once the smoothed loss exceeds 4x its minimum


@dataclass(frozen=True)
class LrFinderResult:
    learning_rates: list[float]
    losses: list[float]  # raw batch losses
    smoothed: list[float]
    turning_lr: float
    suggested_lr: float


def smooth(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta**i))
    return out


def turning_point(learning_rates: list[float], smoothed: list[float]) -> float:
    """The rate where the smoothed loss is lowest: past it, the loss shoots up."""
    return learning_rates[int(np.argmin(smoothed))]


def find_lr(
    params: dict[str, Any],
    data: Dataset,
    *,
    min_lr: float = 1e-5,
    max_lr: float = 10.0,
    iterations: int = 500,
    seed: int = 0,
) -> LrFinderResult:
    """Run the finder for the model ``params`` describe (its own schedule is ignored:
    the finder's exponential growth replaces it)."""
    from trainables.model import build_model

    if not 0 < min_lr < max_lr:
        raise ValueError(f"lr finder needs 0 < min_lr < max_lr (got {min_lr}, {max_lr})")
    p = resolve({**params, "lr_schedule": "constant", "learning_rate": min_lr})
    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)
    model = build_model(p, build_context(data.spec, p["batch_size"], 1, seed))
    factor = (max_lr / min_lr) ** (1.0 / iterations)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.y_train))
    rates: list[float] = []
    losses: list[float] = []
    position = 0
    for step in range(iterations):
        if position + p["batch_size"] > len(order):
            order, position = rng.permutation(len(data.y_train)), 0
        batch = order[position : position + p["batch_size"]]
        position += p["batch_size"]
        lr = min_lr * factor**step
        model.optimizer.learning_rate = lr
        loss = float(model.train_on_batch(take(data.x_train, batch), data.y_train[batch])[0])
        if not math.isfinite(loss):
            break
        rates.append(lr)
        losses.append(loss)
        smoothed = smooth(losses)
        if step > 10 and smoothed[-1] > DIVERGENCE * min(smoothed):
            break
    if len(losses) < 5:
        raise ValueError(f"lr finder: loss diverged after {len(losses)} steps from {min_lr}")
    smoothed = smooth(losses)
    turning = turning_point(rates, smoothed)
    return LrFinderResult(rates, losses, smoothed, turning, turning / 10)
