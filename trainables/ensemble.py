"""Greedy ensemble selection (Caruana et al., 2004) and the averaged Keras model it makes.

A sweep trains dozens of models and registers one. Averaging the outputs (class
probabilities, or predicted values) of a few of the best ones is the cheapest gain there
is (no training, only inference), and which ones to average is chosen on the validation
set alone: start from the best model, then repeatedly add (with replacement) the one that
most improves the average's validation score (the sweep's objective; ties: lower loss),
and keep the best prefix. Picking with replacement turns into weights; a prefix of one
is the best model alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np


@dataclass(frozen=True)
class Selection:
    """Chosen members (indices into the candidates), their weights (summing to 1) and
    the score of their average (``key``'s value)."""

    members: tuple[int, ...]
    weights: tuple[float, ...]
    score: tuple[float, ...]


# A prediction -> a comparable score, higher is better (e.g. (accuracy, -log loss)).
Key = Callable[[np.ndarray], tuple[float, ...]]


def greedy_selection(val_outputs: Sequence[np.ndarray], key: Key, size: int) -> Selection:
    """Choose up to ``size`` picks (with replacement) among ``val_outputs`` (one array of
    validation outputs per candidate, best candidate first) to maximize ``key`` of their
    average; the first of equal keys wins (the better-ranked candidate)."""
    if not val_outputs:
        raise ValueError("no candidates to select from")
    picks = [0]
    total = np.asarray(val_outputs[0], dtype=np.float64)
    best_key = key(total)
    best_len = 1
    for _ in range(size - 1):
        keys = [key((total + p) / (len(picks) + 1)) for p in val_outputs]
        i = max(range(len(keys)), key=lambda k: (keys[k], -k))
        picks.append(i)
        total = total + val_outputs[i]
        if keys[i] > best_key:
            best_key, best_len = keys[i], len(picks)
    counts = Counter(picks[:best_len])
    members = tuple(sorted(counts))
    return Selection(
        members=members,
        weights=tuple(counts[m] / best_len for m in members),
        score=best_key,
    )


def _like_inputs(model: keras.Model) -> Any:
    """Fresh inputs shaped like ``model``'s (one tensor, or a table's dict)."""
    if not isinstance(model, keras.Sequential) and isinstance(model.input, dict):
        return {
            name: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=name)
            for name, t in model.input.items()
        }
    t = model.inputs[0]
    return keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name)


def average_model(models: Sequence[keras.Model], weights: Sequence[float]) -> keras.Model:
    """One Keras model whose output is the weighted mean of ``models``' outputs (class
    probabilities): it saves, exports as a SavedModel and serves like any single model.
    One model with weight 1 is returned as it is."""
    if len(models) != len(weights) or not models:
        raise ValueError("need one weight per model, and at least one model")
    if len(models) == 1:
        return models[0]
    inputs = _like_inputs(models[0])
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
