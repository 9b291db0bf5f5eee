"""Learning-rate schedules of the texts' chapters, keyed on optimizer steps.

Schedules are Keras ``LearningRateSchedule`` objects evaluated on ``optimizer.iterations``,
so they resume correctly from a checkpoint (the step lives in the optimizer, not in an
epoch counter that restarts at 0 on every ``fit``, as HOML 2e ch. 11, Learning Rate
Scheduling warns). Epoch-valued params are converted with the number of steps per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

from trainables.registry import CYCLIC_MOMENTUM_OPTIMIZERS

# 1cycle constants (Smith 2018 as in 001): start at max/10, annihilate to start/1000
# over the last ~10% of steps; momentum 0.95 -> 0.85 -> 0.95.
ONECYCLE_START_DIV = 10.0
ONECYCLE_FINAL_DIV = 1000.0
ONECYCLE_LAST_FRACTION = 0.1
ONECYCLE_MOMENTUM = (0.95, 0.85)


@keras.saving.register_keras_serializable(package="dnn_sweep")
class PowerDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Power scheduling: lr(t) = lr0 / (1 + t/s)^c (001; c = 1 is InverseTimeDecay)."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, power: float = 1.0):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = float(decay_steps)
        self.power = float(power)

    def __call__(self, step: Any) -> Any:
        t = ops.cast(step, "float32")
        return self.initial_learning_rate / ops.power(1.0 + t / self.decay_steps, self.power)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "power": self.power,
        }


def _piecewise_linear(step: Any, points: list[tuple[float, float]]) -> Any:
    """Linear interpolation through (step, value) points; flat outside them."""
    t = ops.cast(step, "float32")
    value = ops.convert_to_tensor(points[-1][1], dtype="float32")
    for (s0, v0), (s1, v1) in reversed(list(zip(points, points[1:], strict=False))):
        frac = ops.clip((t - s0) / max(s1 - s0, 1.0), 0.0, 1.0)
        value = ops.where(t < s1, v0 + (v1 - v0) * frac, value)
    return value


@keras.saving.register_keras_serializable(package="dnn_sweep")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """1cycle (Smith 2018, 001): lr rises linearly from max/10 to max over the first half
    of the cycle, falls back to max/10 over the second, then drops to max/10/1000 over
    the last ~10% of steps."""

    def __init__(self, max_learning_rate: float, total_steps: int):
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)

    def points(self) -> list[tuple[float, float]]:
        last = max(1, int(self.total_steps * ONECYCLE_LAST_FRACTION))
        half = max(1, (self.total_steps - last) // 2)
        start = self.max_learning_rate / ONECYCLE_START_DIV
        return [
            (0, start),
            (half, self.max_learning_rate),
            (2 * half, start),
            (self.total_steps, start / ONECYCLE_FINAL_DIV),
        ]

    def __call__(self, step: Any) -> Any:
        return _piecewise_linear(step, self.points())

    def get_config(self) -> dict[str, Any]:
        return {"max_learning_rate": self.max_learning_rate, "total_steps": self.total_steps}


@keras.saving.register_keras_serializable(package="dnn_sweep")
class OneCycleMomentum(keras.optimizers.schedules.LearningRateSchedule):
    """1cycle's momentum: 0.95 -> 0.85 over the first half, back to 0.95, then flat."""

    def __init__(self, total_steps: int):
        self.total_steps = int(total_steps)

    def __call__(self, step: Any) -> Any:
        high, low = ONECYCLE_MOMENTUM
        cycle = OneCycle(1.0, self.total_steps).points()
        return _piecewise_linear(
            step, [(cycle[0][0], high), (cycle[1][0], low), (cycle[2][0], high)]
        )

    def get_config(self) -> dict[str, Any]:
        return {"total_steps": self.total_steps}


@dataclass(frozen=True)
class Schedule:
    """What the optimizer and the training loop need for one schedule choice."""

    learning_rate: Any  # a float or a LearningRateSchedule
    momentum: Any = None  # a momentum schedule (1cycle with a momentum optimizer)
    callbacks: tuple[keras.callbacks.Callback, ...] = ()


def build_schedule(
    p: dict[str, Any], steps_per_epoch: int, epochs: int, monitor: str = "val_loss"
) -> Schedule:
    """The schedule ``p['lr_schedule']`` names, for a run of ``epochs`` epochs;
    performance scheduling watches ``monitor`` (``loss`` in a refit, which has no
    validation split left)."""
    lr, name = float(p["learning_rate"]), p["lr_schedule"]
    spe = max(1, int(steps_per_epoch))
    total = max(2, spe * int(epochs))
    if name == "constant":
        return Schedule(lr)
    if name == "power":
        return Schedule(PowerDecay(lr, p["decay_epochs"] * spe, p["power_c"]))
    if name == "exponential":  # lr0 * 0.1^(t/s): a 10x drop every decay_epochs (HOML 2e ch. 11)
        return Schedule(
            keras.optimizers.schedules.ExponentialDecay(
                lr, decay_steps=p["decay_epochs"] * spe, decay_rate=0.1
            )
        )
    if name == "piecewise":
        return Schedule(
            keras.optimizers.schedules.PiecewiseConstantDecay(
                boundaries=[int(b * spe) for b in p["piecewise_boundaries"]],
                values=[lr * f for f in p["piecewise_factors"]],
            )
        )
    if name == "performance":
        return Schedule(
            lr,
            callbacks=(
                keras.callbacks.ReduceLROnPlateau(
                    monitor=monitor,
                    factor=p["plateau_factor"],
                    patience=p["plateau_patience"],
                    verbose=0,
                ),
            ),
        )
    if name == "onecycle":
        has_momentum = p["optimizer"] in CYCLIC_MOMENTUM_OPTIMIZERS and (
            p["optimizer"] != "sgd" or p["momentum"] > 0 or p["nesterov"]
        )
        return Schedule(OneCycle(lr, total), OneCycleMomentum(total) if has_momentum else None)
    if name == "cosine":
        warmup = int(p["warmup_epochs"] * spe)
        return Schedule(
            keras.optimizers.schedules.CosineDecay(
                0.0,
                decay_steps=max(1, total - warmup),
                alpha=p["cosine_alpha"],
                warmup_target=lr,
                warmup_steps=warmup,
            )
        )
    raise ValueError(f"lr_schedule={name!r}: unknown schedule")
