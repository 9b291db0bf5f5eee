"""The model a sweep registers: the best trial's, or a greedy ensemble of the best trials'.

With ``ensemble.size`` > 1 the ``ensemble.candidates`` trials with the best objective
are loaded from their best checkpoints, greedy ensemble selection
(``trainables.ensemble``) picks members and weights on the validation set, and their
average becomes one Keras model, registered like a single one. The test set is only
used afterwards, to score it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.trainable import MODEL_FILE
from trainables.task import Objective


@dataclass(frozen=True)
class FinalModel:
    """The registered model, the best trial's own model, and what the ensemble holds:
    (trial label, weight) per member (one member, weight 1, when not an ensemble)."""

    model: Any
    best_trial_model: Any
    members: tuple[tuple[str, float], ...]
    val_score: float  # the objective of the registered model on the validation split


@dataclass(frozen=True)
class Candidate:
    label: str
    checkpoint: Any


def load_checkpoint_model(checkpoint: Any) -> Any:
    """The Keras model saved in a trial's checkpoint."""
    from trainables.train import load_checkpoint

    with checkpoint.as_directory() as folder:
        return load_checkpoint(str(Path(folder) / MODEL_FILE))


def candidates(
    results: Any, best_trial_id: str, limit: int, objective: Objective
) -> list[Candidate]:
    """The ``limit`` trials with the best objective that kept a checkpoint, best first
    (the sweep's best trial first among equals)."""
    found = []
    for result in results:
        frame = result.metrics_dataframe
        metric = objective.metric
        if frame is None or metric not in frame or frame[metric].isna().all():
            continue
        try:
            checkpoint = result.get_best_checkpoint(metric, objective.mode)
        except RuntimeError:  # "No checkpoint exists": stopped before its first one
            continue
        if checkpoint is None:
            continue
        trial_id = str(result.metrics.get("trial_id", "?"))
        found.append(
            (
                objective.sort_key(objective.best_of(frame[metric].tolist())),
                trial_id != best_trial_id,
                Candidate(f"trial-{trial_id}", checkpoint),
            )
        )
    found.sort(key=lambda row: row[:2])
    return [row[2] for row in found[:limit]]


def final_model(
    results: Any,
    best: tuple[str, Any, float, Any],
    data: Any,
    objective: Objective,
    size: int,
    limit: int,
) -> FinalModel:
    """The best trial's model (``size`` 1), or the greedy ensemble of up to ``size``
    picks among the ``limit`` best trials, chosen on ``data``'s validation split.
    ``best`` is (trial id, best checkpoint, best objective value, params) of the best
    trial."""
    best_trial_id, best_checkpoint, best_value = best[:3]
    model = load_checkpoint_model(best_checkpoint)
    label = f"trial-{best_trial_id}"
    pool = candidates(results, best_trial_id, limit, objective) if size > 1 else []
    if len(pool) < 2:
        return FinalModel(model, model, ((label, 1.0),), best_value)
    from trainables.ensemble import average_model, greedy_selection
    from trainables.evaluate import ranking

    models, kept = [model], [pool[0]]
    for candidate in pool[1:]:
        try:
            models.append(load_checkpoint_model(candidate.checkpoint))
            kept.append(candidate)
        except (OSError, ValueError):  # a checkpoint gone from storage: not a candidate
            continue
    predictions = [data.predict(m, "val") for m in models]
    outputs = [out for out, _ in predictions]
    chosen = greedy_selection(outputs, ranking(data.task, objective, predictions[0][1]), size)
    members = tuple((kept[i].label, w) for i, w in zip(chosen.members, chosen.weights, strict=True))
    averaged = average_model([models[i] for i in chosen.members], chosen.weights)
    sign = 1.0 if objective.mode == "max" else -1.0
    return FinalModel(averaged, model, members, sign * chosen.score[0])
