"""The model a sweep registers: the chosen trial's, or a greedy ensemble of the best
trials'.

The trials are ranked by their best objective (``ranked_trials``); the chosen one (the
best, or the re-check's pick) leads. With ``ensemble.size`` > 1 the
``ensemble.candidates`` best trials are loaded from their best checkpoints, greedy
ensemble selection (``trainables.ensemble``) picks members and weights on the validation
set, and their average becomes one Keras model, registered like a single one. The test
set is only used afterwards, to score it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnn_sweep.errors import reason
from search.pbt import flat
from search.tune_trial import MODEL_FILE
from trainables.task import Objective

# ensemble.size=null: a greedy ensemble of up to 10, the best final model measured on
# Fashion-MNIST over 3 seeds against the best checkpoint, refits and re-checks
# (bench/README.md, "The final model").
ENSEMBLE_SIZE = 10


def default_size(objective: Objective, several_objectives: bool) -> int:
    """``ensemble.size`` when the config leaves it null: 10, but 1 with several
    objectives (the Pareto rule picks one trial) or an AUC objective (selection on a
    ranking score ignores calibration: an ensemble of a binary table's trials kept its
    AUC and lost 20 points of accuracy at the 0.5 threshold)."""
    return 1 if several_objectives or objective.name == "auc" else ENSEMBLE_SIZE


@dataclass(frozen=True)
class Ranked:
    """A trial as the final phase sees it: its params, its best objective value, the
    epoch that value was reached at, and its best checkpoint."""

    trial_id: str
    params: dict[str, Any]
    value: float
    best_epoch: int
    checkpoint: Any

    @property
    def label(self) -> str:
        return f"trial-{self.trial_id}"


@dataclass(frozen=True)
class FinalModel:
    """The registered model, the chosen trial's own model, and what the ensemble holds:
    (trial, weight) per member (one member, weight 1, when not an ensemble)."""

    model: Any
    best_trial_model: Any
    members: tuple[tuple[Ranked, float], ...]
    val_score: float  # the objective of the chosen models on the validation split
    refit: bool = False  # retrained on training + validation data (search/recheck.py)
    # candidates left out because their checkpoint does not load: "trial-X: why" each
    dropped: tuple[str, ...] = ()


def load_checkpoint_model(checkpoint: Any) -> Any:
    """The Keras model saved in a trial's checkpoint."""
    from trainables.train import load_checkpoint

    with checkpoint.as_directory() as folder:
        return load_checkpoint(str(Path(folder) / MODEL_FILE))


def ranked_trials(results: Any, objective: Objective) -> list[Ranked]:
    """Every trial that reached an objective value and kept a checkpoint, best first."""
    found = []
    metric = objective.metric
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or metric not in frame or frame[metric].isna().all():
            continue
        try:
            checkpoint = result.get_best_checkpoint(metric, objective.mode)
        except RuntimeError:  # "No checkpoint exists": stopped before its first one
            continue
        if checkpoint is None:
            continue
        values = frame[metric].tolist()
        value = objective.best_of(values)
        epochs = frame["epoch"].tolist() if "epoch" in frame else range(1, len(values) + 1)
        best_epoch = int(next(e for e, v in zip(epochs, values, strict=True) if v == value))
        trial_id = str(result.metrics.get("trial_id", "?"))
        params = dict(sorted(flat(result.config).items()))
        found.append(
            (objective.sort_key(value), Ranked(trial_id, params, value, best_epoch, checkpoint))
        )
    found.sort(key=lambda row: row[0])  # stable: equals keep Tune's trial order
    return [row[1] for row in found]


def led_by(ranked: list[Ranked], trial_id: str) -> list[Ranked]:
    """``ranked`` with trial ``trial_id`` (the chosen one) moved to the front."""
    return sorted(ranked, key=lambda r: r.trial_id != trial_id)


def final_model(pool: list[Ranked], data: Any, objective: Objective, size: int) -> FinalModel:
    """The chosen trial's model (``pool[0]``; ``size`` 1), or the greedy ensemble of up
    to ``size`` picks among ``pool``, chosen on ``data``'s validation split."""
    chosen = pool[0]
    model = load_checkpoint_model(chosen.checkpoint)
    if size < 2 or len(pool) < 2:
        return FinalModel(model, model, ((chosen, 1.0),), chosen.value)
    from trainables.ensemble import average_model, greedy_selection
    from trainables.evaluate import ranking

    models, kept, dropped = [model], [chosen], []
    for candidate in pool[1:]:
        try:
            models.append(load_checkpoint_model(candidate.checkpoint))
            kept.append(candidate)
        except Exception as exc:  # noqa: BLE001 - gone from storage, or will not load
            dropped.append(f"{candidate.label}: {type(exc).__name__}: {reason(exc)}")
    predictions = [data.predict(m, "val") for m in models]
    outputs = [out for out, _ in predictions]
    picked = greedy_selection(outputs, ranking(data.task, objective, predictions[0][1]), size)
    members = tuple((kept[i], w) for i, w in zip(picked.members, picked.weights, strict=True))
    averaged = average_model([models[i] for i in picked.members], picked.weights)
    sign = 1.0 if objective.mode == "max" else -1.0
    return FinalModel(averaged, model, members, sign * picked.score[0], dropped=tuple(dropped))
