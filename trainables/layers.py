"""Custom Keras pieces the texts' chapters need and Keras lacks."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from trainables.private_apis import variable_index


@keras.saving.register_keras_serializable(package="dnn_sweep")
class RReLU(keras.layers.Layer):
    """Randomized leaky ReLU (Xu et al. 2015; HOML 1e ch. 11, Nonsaturating Activation
    Functions): in training each activation's negative slope is drawn from U(lower,
    upper); at inference it is the mean slope."""

    def __init__(
        self, lower: float = 1 / 8, upper: float = 1 / 3, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not 0 <= lower <= upper < 1:
            raise ValueError(f"RReLU needs 0 <= lower <= upper < 1, got {lower}, {upper}")
        self.lower, self.upper = float(lower), float(upper)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if training and self.trainable:  # frozen (transfer): inference mode, as BN is
            slope = keras.random.uniform(
                ops.shape(inputs), self.lower, self.upper, seed=self.seed_generator
            )
        else:
            slope = (self.lower + self.upper) / 2
        return ops.where(inputs >= 0, inputs, inputs * slope)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lower": self.lower, "upper": self.upper, "seed": self.seed}

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


@keras.saving.register_keras_serializable(package="dnn_sweep")
class ScheduledMomentumSGD(keras.optimizers.SGD):
    """SGD whose momentum may follow a schedule of the step (1cycle cycles it).

    Keras' SGD reads ``momentum`` as a Python float baked into the traced train step;
    here a ``momentum_schedule(iterations)`` is evaluated inside the step instead.
    Without a schedule it is exactly Keras' SGD.
    """

    def __init__(self, *args: Any, momentum_schedule: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(momentum_schedule, dict):
            momentum_schedule = keras.saving.deserialize_keras_object(momentum_schedule)
        self.momentum_schedule = momentum_schedule
        if momentum_schedule is not None and self.momentum == 0:
            self.momentum = float(momentum_schedule(0))  # so build() creates the slots

    def current_momentum(self) -> float:
        """The momentum the next step uses (for logging)."""
        if self.momentum_schedule is None:
            return float(self.momentum)
        return float(ops.convert_to_numpy(self.momentum_schedule(self.iterations)))

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.momentum_schedule is None:
            return super().update_step(gradient, variable, learning_rate)
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        m = self.momentums[variable_index(self, variable)]
        momentum = ops.cast(self.momentum_schedule(self.iterations), variable.dtype)
        step = ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate))
        self.assign(m, step)
        if self.nesterov:
            self.assign_add(
                variable,
                ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate)),
            )
        else:
            self.assign_add(variable, m)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.momentum_schedule is not None:
            config["momentum_schedule"] = keras.saving.serialize_keras_object(
                self.momentum_schedule
            )
        return config


@keras.saving.register_keras_serializable(package="dnn_sweep")
class FillMissing(keras.layers.Layer):
    """NaN -> ``value`` (a numeric table column's training mean): a row with a blank
    field still gets a prediction from the served model."""

    def __init__(self, value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = float(value)

    def call(self, inputs: Any) -> Any:
        return ops.where(ops.isnan(inputs), ops.cast(self.value, inputs.dtype), inputs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "value": self.value}

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


@keras.saving.register_keras_serializable(package="dnn_sweep")
class IsMissing(keras.layers.Layer):
    """1.0 where the input is NaN (blank), else 0.0: lets the model learn from
    missingness itself, beside the imputed value."""

    def call(self, inputs: Any) -> Any:
        return ops.cast(ops.isnan(inputs), "float32")

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


@keras.saving.register_keras_serializable(package="dnn_sweep")
class StandardizedLoss(keras.losses.Loss):
    """A regression loss computed on the standardized target, (y - mean) / std, while
    the model predicts in the target's units: learning rates and Huber's delta then
    mean the same for a target in millimetres or in kilometres."""

    def __init__(
        self,
        kind: str = "mse",
        delta: float = 1.0,
        mean: float = 0.0,
        std: float = 1.0,
        name: str = "standardized_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if kind not in ("mse", "huber"):
            raise ValueError(f"StandardizedLoss kind must be mse or huber, got {kind!r}")
        self.kind, self.delta = kind, float(delta)
        self.mean, self.std = float(mean), float(std)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
        t = (y_true - self.mean) / self.std
        p = (y_pred - self.mean) / self.std
        if self.kind == "huber":
            return keras.losses.huber(t, p, delta=self.delta)
        return ops.mean(ops.square(t - p), axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "kind": self.kind,
            "delta": self.delta,
            "mean": self.mean,
            "std": self.std,
        }


@keras.saving.register_keras_serializable(package="dnn_sweep")
class MCDropout(keras.layers.Dropout):
    """Dropout that stays on at inference: MC dropout (the text's ``MCDropout``)."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return super().call(inputs, training=True)


@keras.saving.register_keras_serializable(package="dnn_sweep")
class MCAlphaDropout(keras.layers.AlphaDropout):
    """AlphaDropout that stays on at inference (MC dropout for self-normalizing nets)."""

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return super().call(inputs, training=True)
