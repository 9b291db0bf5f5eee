"""The two ends of every model: raw inputs -> one float vector per example, and a
vector -> the task's output; plus the loss and metrics the task is compiled with.

Our MLP builder uses them, and so can a user's own ``build_model(params, spec)``:

    inputs, x = input_block(spec.inputs)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, output_block(x, spec.task))

Preprocessing lives inside the model (scaling, imputation, vocabulary lookups), with
statistics from the training split, so the exported model takes raw values.
"""

from __future__ import annotations

from typing import Any

import keras

from trainables.layers import FillMissing, IsMissing, StandardizedLoss
from trainables.spec import ColumnSpec, InputSpec
from trainables.task import Task

# Input names of the array kinds (a table's inputs are named after its columns).
INPUT_NAMES = {"features": "features", "image": "image"}


def _numeric(c: ColumnSpec, raw: Any, norm: str) -> list[Any]:
    x = keras.layers.Reshape((1,), name=f"{c.key}_col")(raw)
    filled = FillMissing(c.mean, name=f"{c.key}_fill")(x)
    if norm == "standardize":
        filled = keras.layers.Normalization(mean=c.mean, variance=c.variance, name=f"{c.key}_norm")(
            filled
        )
    elif norm == "scale":
        filled = keras.layers.Rescaling(1.0 / c.max_abs, name=f"{c.key}_scale")(filled)
    if c.missing:
        return [filled, IsMissing(name=f"{c.key}_missing")(x)]
    return [filled]


def _categorical(c: ColumnSpec, raw: Any, encoding: str, embedding_dim: int) -> Any:
    vocabulary = list(c.vocabulary) or [""]
    if encoding == "one_hot":
        return keras.layers.StringLookup(
            vocabulary=vocabulary, output_mode="one_hot", name=f"{c.key}_onehot"
        )(raw)
    index = keras.layers.StringLookup(vocabulary=vocabulary, name=f"{c.key}_lookup")(raw)
    return keras.layers.Embedding(len(vocabulary) + 1, embedding_dim, name=f"{c.key}_embedding")(
        index
    )


def _table(spec: InputSpec, norm: str, encoding: str, embedding_dim: int) -> tuple[dict, Any]:
    inputs, parts = {}, []
    for c in spec.columns:
        dtype = "float32" if c.kind == "numeric" else "string"
        raw = inputs[c.key] = keras.Input(shape=(), dtype=dtype, name=c.key)
        if c.kind == "numeric":
            parts += _numeric(c, raw, norm)
        else:
            parts.append(_categorical(c, raw, encoding, embedding_dim))
    features = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="columns")(parts)
    return inputs, features


def input_block(
    spec: InputSpec,
    input_norm: str = "auto",
    categorical_encoding: str = "one_hot",
    embedding_dim: int = 8,
) -> tuple[Any, Any]:
    """(model inputs, features): Keras inputs for ``spec`` and the flat float tensor
    they become. ``input_norm``: scale, standardize, none or auto (scale pixels,
    standardize anything else); tables: each numeric column imputed (NaN -> training
    mean, plus a missing indicator if training had blanks) and normalized, each
    categorical column looked up in its training vocabulary, one-hot or embedded."""
    norm = spec.norm(input_norm)
    if spec.kind == "table":
        return _table(spec, norm, categorical_encoding, embedding_dim)
    raw = keras.Input(shape=spec.shape, name=INPUT_NAMES[spec.kind])
    x = keras.layers.Flatten(name="flatten")(raw) if len(spec.shape) > 1 else raw
    if norm == "scale":
        x = keras.layers.Rescaling(1.0 / spec.scale, name="rescale")(x)
    elif norm == "standardize":
        if spec.mean is None or spec.std is None:
            raise ValueError("input_norm=standardize needs the training set's feature stats")
        x = keras.layers.Normalization(mean=spec.mean, variance=spec.std**2, name="standardize")(x)
    return raw, x


def output_block(
    x: Any, task: Task, regularizer: Any = None, seed: int = 0, name: str = "output"
) -> Any:
    """The task's output layer: softmax over classes (multiclass), one sigmoid (binary),
    a sigmoid per label (multilabel), or a linear unit rescaled to the target's units
    (regression, so the served model predicts real values)."""
    activation = {"multiclass": "softmax", "binary": "sigmoid", "multilabel": "sigmoid"}
    out = keras.layers.Dense(
        task.n_outputs,
        activation=activation.get(task.kind),
        kernel_regularizer=regularizer,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 999),
        name=name if task.kind != "regression" else f"{name}_standardized",
    )(x)
    if task.kind == "regression":
        out = keras.layers.Rescaling(task.target_std, offset=task.target_mean, name=name)(out)
    return out


def compile_args(task: Task, regression_loss: str = "mse", huber_delta: float = 1.0) -> dict:
    """``loss`` and ``metrics`` for ``model.compile``, named as the objective names them
    (``accuracy``, ``auc``, ``rmse``, ``mae``; Keras adds ``val_``)."""
    if task.kind == "multiclass":
        return {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
    if task.kind in ("binary", "multilabel"):
        multi = task.kind == "multilabel"
        auc = keras.metrics.AUC(
            name="auc", multi_label=multi, num_labels=task.n_outputs if multi else None
        )
        return {
            "loss": "binary_crossentropy",
            "metrics": [keras.metrics.BinaryAccuracy(name="accuracy"), auc],
        }
    return {
        "loss": StandardizedLoss(
            regression_loss, huber_delta, task.target_mean, task.target_std, name="loss"
        ),
        "metrics": [
            keras.metrics.RootMeanSquaredError(name="rmse"),
            keras.metrics.MeanAbsoluteError(name="mae"),
        ],
    }
