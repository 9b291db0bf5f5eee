"""Params dict -> compiled Keras MLP. Pure: same params, context and seed, same model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from trainables.params import layer_value, resolve
from trainables.registry import ACTIVATIONS, INITIALIZERS, OPTIMIZERS
from trainables.schedules import build_schedule


@dataclass(frozen=True)
class BuildContext:
    """What the builder needs to know about the data and the run, besides the params.

    ``feature_mean``/``feature_std`` come from the training split (for
    ``input_norm=standardize``); ``steps_per_epoch``/``epochs`` size the schedules.
    """

    input_dim: int
    n_classes: int
    input_scale: float = 1.0
    feature_mean: np.ndarray | None = None
    feature_std: np.ndarray | None = None
    steps_per_epoch: int = 100
    epochs: int = 10
    seed: int = 0


def hidden_units(p: dict[str, Any]) -> list[int]:
    """Units of each hidden layer from n_neurons (or n_neurons_<i>) and layer_shape."""
    n = p["n_hidden"]
    units = [int(layer_value(p, "n_neurons", i)) for i in range(n)]
    if p["layer_shape"] == "pyramid":  # 300-200-100: shrink linearly to n_neurons / n_hidden
        units = [max(1, round(u * (n - i) / n)) for i, u in enumerate(units)]
    elif p["layer_shape"] == "first_bigger" and n:
        units[0] = max(1, round(units[0] * p["first_layer_factor"]))
    return units


def _dropout(p: dict[str, Any], rate: float, seed: int) -> keras.layers.Layer:
    cls = keras.layers.AlphaDropout if p["dropout_type"] == "alpha" else keras.layers.Dropout
    return cls(rate, seed=seed)


def _batch_norm(p: dict[str, Any]) -> keras.layers.Layer:
    return keras.layers.BatchNormalization(momentum=p["bn_momentum"], epsilon=p["bn_epsilon"])


def _regularizer(p: dict[str, Any]) -> keras.regularizers.Regularizer | None:
    l1, l2 = p["l1"], p["l2"]
    if l1 > 0 and l2 > 0:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1 > 0:
        return keras.regularizers.L1(l1)
    return keras.regularizers.L2(l2) if l2 > 0 else None


def _input_layers(p: dict[str, Any], ctx: BuildContext) -> list[keras.layers.Layer]:
    layers: list[keras.layers.Layer] = [keras.Input(shape=(ctx.input_dim,), name="pixels")]
    if p["input_norm"] == "scale":
        layers.append(keras.layers.Rescaling(1.0 / ctx.input_scale, name="rescale"))
    elif p["input_norm"] == "standardize":
        if ctx.feature_mean is None or ctx.feature_std is None:
            raise ValueError("input_norm=standardize needs the training set's feature stats")
        layers.append(
            keras.layers.Normalization(
                mean=ctx.feature_mean, variance=np.square(ctx.feature_std), name="standardize"
            )
        )
    if p["input_bn"]:
        layers.append(_batch_norm(p))
    if p["input_dropout"] > 0:
        layers.append(_dropout(p, p["input_dropout"], ctx.seed + 1000))
    return layers


def build_model(params: dict[str, Any], ctx: BuildContext) -> keras.Sequential:
    """Build and compile the MLP that ``params`` describe.

    Layout: Input -> [Rescaling | Normalization] -> [BN] -> [Dropout] -> n_hidden x
    [Dense -> (BN before/after) activation -> Dropout] -> Dense(n_classes, softmax).
    Input scaling lives inside the model so the exported SavedModel takes raw pixel
    values. Raises ValueError for inconsistent params (see ``params.resolve``).
    """
    p = resolve(params)
    init = INITIALIZERS[p["initializer"]]
    reg = _regularizer(p)
    layers = _input_layers(p, ctx)
    for i, units in enumerate(hidden_units(p)):
        layers.append(
            keras.layers.Dense(
                units,
                use_bias=p["batch_norm"] != "before",  # BN's beta replaces the bias (001)
                kernel_initializer=init(p, ctx.seed + i),
                kernel_regularizer=reg,
                kernel_constraint=keras.constraints.MaxNorm(p["max_norm"], axis=0)
                if p["max_norm"] > 0
                else None,
                name=f"hidden_{i}",
            )
        )
        if p["batch_norm"] == "before":
            layers.append(_batch_norm(p))
        layers.append(ACTIVATIONS[p["activation"]](p))
        if p["batch_norm"] == "after":
            layers.append(_batch_norm(p))
        if p["dropout"] > 0:
            layers.append(_dropout(p, p["dropout"], ctx.seed + i))
    layers.append(
        keras.layers.Dense(
            ctx.n_classes,
            activation="softmax",
            kernel_regularizer=reg,
            kernel_initializer=keras.initializers.GlorotUniform(seed=ctx.seed + 999),
            name="output",
        )
    )
    model = keras.Sequential(layers, name="mlp")
    model.compile(
        optimizer=make_optimizer(p, ctx),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def make_optimizer(params: dict[str, Any], ctx: BuildContext) -> keras.optimizers.Optimizer:
    """The optimizer ``params`` name, with its own params and learning-rate schedule."""
    p = resolve(params)
    schedule = build_schedule(p, ctx.steps_per_epoch, ctx.epochs)
    return OPTIMIZERS[p["optimizer"]](p, schedule.learning_rate, schedule.momentum)
