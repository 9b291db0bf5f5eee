"""Scoring a trained model on a split: the task's metrics, and MC dropout (the text's
``MCDropout``) with its uncertainty, computed the same way for one model or an ensemble."""

from __future__ import annotations

from typing import Any, Protocol

import keras
import numpy as np

from trainables.ensemble import members_of
from trainables.task import Task

_DROPOUT = (keras.layers.Dropout, keras.layers.AlphaDropout)


def has_dropout(model: keras.Model) -> bool:
    return any(isinstance(layer, _DROPOUT) for layer in model.layers)


def predict(model: keras.Model, x: Any, batch_size: int = 2048) -> np.ndarray:
    """Outputs as a 2-D array (rows x units)."""
    out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
    return out.reshape(len(out), -1)


def mean_entropy(probs: np.ndarray) -> float:
    """Mean predictive entropy in nats: higher means less certain."""
    p = np.clip(probs, 1e-12, 1.0)
    return float(np.mean(-np.sum(p * np.log(p), axis=1)))


def _binary_entropy(p: np.ndarray) -> float:
    return (
        mean_entropy(np.concatenate([p, 1 - p], axis=1))
        if p.shape[1] == 1
        else float(
            np.mean([mean_entropy(np.stack([p[:, j], 1 - p[:, j]], 1)) for j in range(p.shape[1])])
        )
    )


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    """Macro ROC AUC (Keras' ``AUC(multi_label=True)`` averages the same way); NaN when
    a label has one class only (undefined)."""
    import warnings

    from sklearn.metrics import roc_auc_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(roc_auc_score(y.reshape(p.shape), p, average="macro"))
        except ValueError:
            return float("nan")


def metrics_of(task: Task, outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The task's metrics (Keras' names: ``accuracy``, ``loss``, ``auc``, ``rmse``,
    ``mae``; ``entropy`` for classifiers) of model ``outputs`` against targets ``y``.
    ``loss`` is the cross-entropy, or for regression the MSE of the standardized target
    (what an mse-trained model reports, without regularization terms)."""
    if task.kind == "multiclass":
        picked = np.clip(outputs[np.arange(len(y)), y.astype(np.int64)], 1e-12, 1.0)
        return {
            "accuracy": float(np.mean(outputs.argmax(axis=1) == y)),
            "loss": float(-np.mean(np.log(picked))),
            "entropy": mean_entropy(outputs),
        }
    if task.kind in ("binary", "multilabel"):
        t = y.reshape(outputs.shape)
        p = np.clip(outputs, 1e-7, 1 - 1e-7)
        return {
            "accuracy": float(np.mean((outputs >= 0.5) == (t >= 0.5))),
            "loss": float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))),
            "auc": _auc(outputs, t),
            "entropy": _binary_entropy(outputs),
        }
    err = outputs[:, 0] - y.reshape(-1)
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "loss": float(np.mean((err / task.target_std) ** 2)),
    }


def mc_model(model: keras.Model) -> keras.Model:
    """A copy of ``model`` whose dropout layers stay on at inference (batch norm and
    everything else in inference mode): the text's MCDropout subclass, applied by
    cloning, so any model (ours or a user's) can be sampled."""
    from trainables.layers import MCAlphaDropout, MCDropout

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, keras.layers.AlphaDropout):
            return MCAlphaDropout.from_config(layer.get_config())
        if isinstance(layer, keras.layers.Dropout):
            return MCDropout.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def mc_predict(model: keras.Model, x: Any, samples: int) -> np.ndarray:
    """Outputs averaged over ``samples`` stochastic passes (MC dropout)."""
    sampler = mc_model(model)
    return sum(predict(sampler, x) for _ in range(samples)) / samples


class Predicts(Protocol):
    """Data that predicts a model on one of its splits (in memory, or streamed)."""

    task: Task

    def predict(self, model: keras.Model, which: str) -> tuple[np.ndarray, np.ndarray]: ...


def score(model: keras.Model, data: Predicts, which: str, mc_samples: int = 0) -> dict:
    """The task's metrics of ``model`` on ``data``'s split ``which``; with ``mc_samples``
    also ``mc_<metric>`` from MC dropout (an ensemble: its members' MC outputs,
    weighted)."""
    outputs, y = data.predict(model, which)
    scores = metrics_of(data.task, outputs, y)
    if mc_samples > 0:
        mc = 0.0
        for member, weight in members_of(model):
            sampler = mc_model(member)
            passes = [data.predict(sampler, which)[0] for _ in range(mc_samples)]
            mc = mc + weight * sum(passes) / mc_samples
        scores |= {f"mc_{k}": v for k, v in metrics_of(data.task, mc, y).items()}
    return scores


def ranking(task: Task, objective: Any, y: np.ndarray) -> Any:
    """Outputs -> (objective's score, higher better; -loss): how ensemble selection
    compares averages (an undefined score, e.g. AUC on one class, ranks last)."""
    sign = 1.0 if objective.mode == "max" else -1.0

    def key(outputs: np.ndarray) -> tuple[float, float]:
        m = metrics_of(task, outputs, y)
        value = m[objective.name]
        return (sign * value if np.isfinite(value) else -np.inf, -m["loss"])

    return key
