"""Scoring a trained model: plain accuracy, and MC dropout (001) with its uncertainty."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from trainables.ensemble import accuracy_and_loss, members_of

_DROPOUT = (keras.layers.Dropout, keras.layers.AlphaDropout)


def has_dropout(model: keras.Model) -> bool:
    return any(isinstance(layer, _DROPOUT) for layer in model.layers)


def stochastic_forward(model: keras.Sequential, x: Any) -> Any:
    """One forward pass with dropout active and everything else (BN) in inference mode:
    the MCDropout-subclass effect of 001 without rebuilding the model."""
    h = keras.ops.convert_to_tensor(x, dtype="float32")
    for layer in model.layers:
        h = layer(h, training=isinstance(layer, _DROPOUT))
    return h


def mc_predict(
    model: keras.Sequential, x: np.ndarray, samples: int, batch_size: int = 2048
) -> np.ndarray:
    """Class probabilities averaged over ``samples`` stochastic passes (MC dropout)."""
    out = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        total = sum(
            keras.ops.convert_to_numpy(stochastic_forward(model, batch)) for _ in range(samples)
        )
        out.append(total / samples)
    return np.concatenate(out)


def mean_entropy(probs: np.ndarray) -> float:
    """Mean predictive entropy in nats: higher means less certain."""
    p = np.clip(probs, 1e-12, 1.0)
    return float(np.mean(-np.sum(p * np.log(p), axis=1)))


def score(
    model: keras.Sequential, x: np.ndarray, y: np.ndarray, mc_samples: int = 0
) -> dict[str, float]:
    """accuracy, loss (NLL) and entropy; with ``mc_samples`` the MC-dropout ones too."""
    probs = model.predict(x, batch_size=2048, verbose=0)
    accuracy, loss = accuracy_and_loss(probs, y)
    scores = {"accuracy": accuracy, "loss": loss, "entropy": mean_entropy(probs)}
    if mc_samples > 0:  # an ensemble: its members' MC-dropout probabilities, weighted
        mc = sum(w * mc_predict(m, x, mc_samples) for m, w in members_of(model))
        scores["mc_accuracy"] = float(np.mean(mc.argmax(axis=1) == y))
        scores["mc_entropy"] = mean_entropy(mc)
    return scores
