"""The model a sweep registers: the best trial's, or a greedy ensemble of the best trials'.

With ``ensemble.size`` > 1 the ``ensemble.candidates`` trials with the best validation
accuracy are loaded from their best checkpoints, greedy ensemble selection
(``trainables.ensemble``) picks members and weights on the validation set, and their
average becomes one Keras model, registered like a single one. The test set is only
used afterwards, to score it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.algorithms import METRIC, MODE
from search.trainable import MODEL_FILE
from trainables.data import Dataset


@dataclass(frozen=True)
class FinalModel:
    """The registered model, the best trial's own model, and what the ensemble holds:
    (trial label, weight) per member (one member, weight 1, when not an ensemble)."""

    model: Any
    best_trial_model: Any
    members: tuple[tuple[str, float], ...]
    val_accuracy: float


@dataclass(frozen=True)
class Candidate:
    label: str
    checkpoint: Any


def load_checkpoint_model(checkpoint: Any) -> Any:
    """The Keras model saved in a trial's checkpoint."""
    import keras

    import trainables.layers  # noqa: F401 - registers the custom layers and schedules
    import trainables.schedules  # noqa: F401

    with checkpoint.as_directory() as folder:
        return keras.saving.load_model(Path(folder) / MODEL_FILE)


def candidates(results: Any, best_trial_id: str, limit: int) -> list[Candidate]:
    """The ``limit`` trials with the best validation accuracy that kept a checkpoint,
    best first (the sweep's best trial first among equals)."""
    found = []
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or METRIC not in frame or frame[METRIC].isna().all():
            continue
        checkpoint = result.get_best_checkpoint(METRIC, MODE)
        if checkpoint is None:
            continue
        trial_id = str(result.metrics.get("trial_id", "?"))
        found.append(
            (
                -float(frame[METRIC].max()),
                trial_id != best_trial_id,
                Candidate(f"trial-{trial_id}", checkpoint),
            )
        )
    found.sort(key=lambda row: row[:2])
    return [row[2] for row in found[:limit]]


def final_model(
    results: Any,
    best_trial_id: str,
    best_checkpoint: Any,
    best_val: float,
    data: Dataset,
    size: int,
    limit: int,
) -> FinalModel:
    """The best trial's model (``size`` 1), or the greedy ensemble of up to ``size``
    picks among the ``limit`` best trials, chosen on ``data``'s validation split."""
    best = load_checkpoint_model(best_checkpoint)
    label = f"trial-{best_trial_id}"
    pool = candidates(results, best_trial_id, limit) if size > 1 else []
    if len(pool) < 2:
        return FinalModel(best, best, ((label, 1.0),), best_val)
    from trainables.ensemble import average_model, greedy_selection

    models, kept = [best], [pool[0]]
    for candidate in pool[1:]:
        try:
            models.append(load_checkpoint_model(candidate.checkpoint))
            kept.append(candidate)
        except (OSError, ValueError):  # a checkpoint gone from storage: not a candidate
            continue
    pool = kept
    probs = [m.predict(data.x_val, batch_size=4096, verbose=0) for m in models]
    chosen = greedy_selection(probs, data.y_val, size)
    members = tuple((pool[i].label, w) for i, w in zip(chosen.members, chosen.weights, strict=True))
    model = average_model([models[i] for i in chosen.members], chosen.weights)
    return FinalModel(model, best, members, chosen.val_accuracy)
