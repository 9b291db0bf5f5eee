"""Greedy ensemble selection (Caruana et al., 2004) and the averaged Keras model it makes.

A sweep trains dozens of models and registers one. Averaging the class probabilities of
a few of the best ones is the cheapest accuracy there is (no training, only inference),
and which ones to average is chosen on the validation set alone: start from the best
model, then repeatedly add (with replacement) the one that most improves the average's
validation accuracy (ties: lower validation log-loss), and keep the best prefix. Picking
with replacement turns into weights; a prefix of one is the best model alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np


@dataclass(frozen=True)
class Selection:
    """Chosen members (indices into the candidates), their weights (summing to 1) and
    the averaged validation scores."""

    members: tuple[int, ...]
    weights: tuple[float, ...]
    val_accuracy: float
    val_loss: float


def accuracy_and_loss(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean negative log-likelihood of class probabilities ``probs``."""
    picked = np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)
    return float(np.mean(probs.argmax(axis=1) == y)), float(-np.mean(np.log(picked)))


def greedy_selection(val_probs: Sequence[np.ndarray], y_val: np.ndarray, size: int) -> Selection:
    """Choose up to ``size`` picks (with replacement) among ``val_probs`` (one (n, classes)
    array per candidate, best candidate first) to maximize the average's accuracy."""
    if not val_probs:
        raise ValueError("no candidates to select from")
    picks = [0]
    total = np.asarray(val_probs[0], dtype=np.float64)
    best_key = _key(*accuracy_and_loss(total, y_val))
    best_len = 1
    for _ in range(size - 1):
        keys = [
            _key(*accuracy_and_loss((total + p) / (len(picks) + 1), y_val)) for p in val_probs
        ]  # the first of equal keys wins: the better-ranked candidate
        i = max(range(len(keys)), key=lambda k: (keys[k], -k))
        picks.append(i)
        total = total + val_probs[i]
        if keys[i] > best_key:
            best_key, best_len = keys[i], len(picks)
    counts = Counter(picks[:best_len])
    members = tuple(sorted(counts))
    acc, loss = best_key[0], -best_key[1]
    return Selection(
        members=members,
        weights=tuple(counts[m] / best_len for m in members),
        val_accuracy=acc,
        val_loss=loss,
    )


def _key(accuracy: float, loss: float) -> tuple[float, float]:
    return accuracy, -loss


def average_model(models: Sequence[keras.Model], weights: Sequence[float]) -> keras.Model:
    """One Keras model whose output is the weighted mean of ``models``' outputs (class
    probabilities): it saves, exports as a SavedModel and serves like any single model.
    One model with weight 1 is returned as it is."""
    if len(models) != len(weights) or not models:
        raise ValueError("need one weight per model, and at least one model")
    if len(models) == 1:
        return models[0]
    inputs = keras.Input(shape=tuple(models[0].inputs[0].shape[1:]), name="features")
    outputs = []
    for i, (model, weight) in enumerate(zip(models, weights, strict=True)):
        model.name = f"member_{i}"  # loaded models share names ("sequential"): clash
        outputs.append(keras.layers.Rescaling(float(weight), name=f"weight_{i}")(model(inputs)))
    return keras.Model(inputs, keras.layers.Add(name="average")(outputs), name="ensemble")


def members_of(model: keras.Model) -> list[tuple[keras.Model, float]]:
    """(member, weight) pairs of an ``average_model``; [(model, 1.0)] for a single model."""
    if model.name != "ensemble":
        return [(model, 1.0)]
    pairs = []
    for i in range(len(model.layers)):
        try:
            member = model.get_layer(f"member_{i}")
        except ValueError:
            break
        pairs.append((member, float(model.get_layer(f"weight_{i}").scale)))
    return pairs
