"""Params dict -> compiled Keras MLP. Pure: same params and seed, same model."""

from __future__ import annotations

from typing import Any

import keras

from trainables.params import layer_value
from trainables.registry import ACTIVATIONS, INITIALIZERS, OPTIMIZERS

# What a param means when a search space leaves it out. Initializer and activation
# are Keras' own defaults for Dense + the seed's relu, so the `keras_tuner` space
# builds exactly the seed's model.
DEFAULTS: dict[str, Any] = {
    "n_hidden": 2,
    "n_neurons": 100,
    "activation": "relu",
    "initializer": "glorot_uniform",
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "dropout": 0.0,
    "l2": 0.0,
}


def param(params: dict[str, Any], name: str) -> Any:
    """A param's value, falling back to the builder's default."""
    return params.get(name, DEFAULTS.get(name))


def build_model(
    params: dict[str, Any],
    input_dim: int,
    n_classes: int,
    *,
    input_scale: float = 1.0,
    seed: int = 0,
) -> keras.Sequential:
    """Build and compile the MLP that ``params`` describe.

    Layout: Input -> Rescaling(1/input_scale) -> n_hidden x [Dense -> activation ->
    Dropout] -> Dense(n_classes, softmax). The rescaling lives inside the model so the
    exported SavedModel takes raw pixel values, exactly what a user has at serving time.
    Per-layer params (``n_neurons_<i>``) win over the shared value (``n_neurons``).
    """
    n_hidden = int(param(params, "n_hidden"))
    l2 = float(param(params, "l2"))
    dropout = float(param(params, "dropout"))
    activation = ACTIVATIONS[param(params, "activation")]
    initializer = INITIALIZERS[param(params, "initializer")]

    layers: list[keras.layers.Layer] = [
        keras.Input(shape=(input_dim,), name="pixels"),
        keras.layers.Rescaling(1.0 / input_scale, name="rescale"),
    ]
    for i in range(n_hidden):
        units = int(layer_value(params, "n_neurons", i, DEFAULTS["n_neurons"]))
        layers.append(
            keras.layers.Dense(
                units,
                kernel_initializer=initializer(seed + i),
                kernel_regularizer=keras.regularizers.L2(l2) if l2 > 0 else None,
                name=f"hidden_{i}",
            )
        )
        layers.append(activation(params))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout, seed=seed + i))
    layers.append(
        keras.layers.Dense(
            n_classes,
            activation="softmax",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + n_hidden),
            name="output",
        )
    )

    model = keras.Sequential(layers, name="mlp")
    model.compile(
        optimizer=make_optimizer(params),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def make_optimizer(params: dict[str, Any]) -> keras.optimizers.Optimizer:
    """The optimizer named by ``params['optimizer']`` with its own params applied."""
    factory = OPTIMIZERS[param(params, "optimizer")]
    return factory(params, float(param(params, "learning_rate")))
