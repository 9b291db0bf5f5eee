"""Params dict -> compiled Keras MLP. Pure: same params, context and seed, same model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from trainables.blocks import compile_args, input_block, output_block
from trainables.params import layer_value, resolve
from trainables.registry import ACTIVATIONS, INITIALIZERS, OPTIMIZERS
from trainables.schedules import build_schedule
from trainables.spec import DataSpec


@dataclass(frozen=True)
class BuildContext:
    """What the builder needs to know about the data and the run, besides the params.

    ``spec`` holds the input (shape, training-split statistics) and the task;
    ``steps_per_epoch``/``epochs`` size the schedules; ``steps_per_execution`` is how
    many of those steps Keras runs per call into TensorFlow (the same results, faster).
    """

    spec: DataSpec
    steps_per_epoch: int = 100
    epochs: int = 10
    seed: int = 0
    steps_per_execution: int = 1


def hidden_units(p: dict[str, Any]) -> list[int]:
    """Units of each hidden layer from n_neurons (or n_neurons_<i>) and layer_shape."""
    n = p["n_hidden"]
    units = [int(layer_value(p, "n_neurons", i)) for i in range(n)]
    if p["layer_shape"] == "pyramid":  # 300-200-100: shrink linearly to n_neurons / n_hidden
        units = [max(1, round(u * (n - i) / n)) for i, u in enumerate(units)]
    elif p["layer_shape"] == "first_bigger" and n:
        units[0] = max(1, round(units[0] * p["first_layer_factor"]))
    return units


def _dropout(
    p: dict[str, Any], rate: float, seed: int, name: str | None = None
) -> keras.layers.Layer:
    cls = keras.layers.AlphaDropout if p["dropout_type"] == "alpha" else keras.layers.Dropout
    return cls(rate, seed=seed, name=name)


def _batch_norm(p: dict[str, Any], name: str | None = None) -> keras.layers.Layer:
    return keras.layers.BatchNormalization(
        momentum=p["bn_momentum"], epsilon=p["bn_epsilon"], name=name
    )


def regularizer(p: dict[str, Any]) -> keras.regularizers.Regularizer | None:
    l1, l2 = p["l1"], p["l2"]
    if l1 > 0 and l2 > 0:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1 > 0:
        return keras.regularizers.L1(l1)
    return keras.regularizers.L2(l2) if l2 > 0 else None


def _input_layers(p: dict[str, Any], ctx: BuildContext) -> tuple[Any, Any]:
    inputs, x = input_block(
        ctx.spec.inputs, p["input_norm"], p["categorical_encoding"], p["embedding_dim"]
    )
    if p["input_bn"]:
        x = _batch_norm(p, "input_bn")(x)
    if p["input_dropout"] > 0:
        x = _dropout(p, p["input_dropout"], ctx.seed + 1000, "input_dropout")(x)
    return inputs, x


def hidden_layers(p: dict[str, Any], ctx: BuildContext, x: Any, prefix: str = "hidden") -> Any:
    """``n_hidden`` blocks (Dense, batch norm, activation, dropout) on ``x``, every layer
    named ``<prefix>_...`` (a transfer model's new blocks sit beside reused ones)."""
    init = INITIALIZERS[p["initializer"]]
    reg = regularizer(p)
    for i, units in enumerate(hidden_units(p)):
        x = keras.layers.Dense(
            units,
            use_bias=p["batch_norm"] != "before",  # BN's beta replaces the bias (HOML 2e ch. 11)
            kernel_initializer=init(p, ctx.seed + i),
            kernel_regularizer=reg,
            kernel_constraint=keras.constraints.MaxNorm(p["max_norm"], axis=0)
            if p["max_norm"] > 0
            else None,
            name=f"{prefix}_{i}",
        )(x)
        if p["batch_norm"] == "before":
            x = _batch_norm(p, f"{prefix}_bn_{i}")(x)
        activation = ACTIVATIONS[p["activation"]](p)
        activation.name = f"{prefix}_act_{i}"  # unique beside a transfer source's layers
        x = activation(x)
        if p["batch_norm"] == "after":
            x = _batch_norm(p, f"{prefix}_bn_{i}")(x)
        if p["dropout"] > 0:
            x = _dropout(p, p["dropout"], ctx.seed + i, f"{prefix}_dropout_{i}")(x)
    return x


def build_model(params: dict[str, Any], ctx: BuildContext) -> keras.Model:
    """Build and compile the MLP that ``params`` describe.

    Layout: inputs -> [Flatten] -> [Rescaling | Normalization] (tables: per column) ->
    [BN] -> [Dropout] -> n_hidden x [Dense -> (BN before/after) activation -> Dropout] ->
    the task's output layer. Input preprocessing lives inside the model so the exported
    SavedModel takes raw values. Raises ValueError for inconsistent params (see
    ``params.resolve``).
    """
    p = resolve(params)
    inputs, x = _input_layers(p, ctx)
    outputs = output_block(hidden_layers(p, ctx, x), ctx.spec.task, regularizer(p), ctx.seed)
    model = keras.Model(inputs, outputs, name="mlp")
    compile_model(model, p, ctx)
    return model


def compile_model(model: keras.Model, params: dict[str, Any], ctx: BuildContext) -> None:
    """Compile ``model`` with the optimizer and schedule ``params`` name, and the task's
    loss and metrics (also for a user's uncompiled ``build_model`` result)."""
    p = resolve(params)
    model.compile(
        optimizer=make_optimizer(p, ctx),
        steps_per_execution=ctx.steps_per_execution,
        **compile_args(ctx.spec.task, p["regression_loss"], p["huber_delta"]),
    )


def make_optimizer(params: dict[str, Any], ctx: BuildContext) -> keras.optimizers.Optimizer:
    """The optimizer ``params`` name, with its own params and learning-rate schedule."""
    p = resolve(params)
    schedule = build_schedule(p, ctx.steps_per_epoch, ctx.epochs)
    return OPTIMIZERS[p["optimizer"]](p, schedule.learning_rate, schedule.momentum)
