"""Which trial checkpoints survive, and when.

Tune's own ``CheckpointConfig(num_to_keep=N)`` deletes a trial's older checkpoints as new
ones arrive, while its experiment snapshot (written every few seconds) may still name one
of them as the trial's latest: a driver killed in between resumes that trial from a
checkpoint that is gone, and Tune records it FAILED (measured on 2026-11-30: a finished
6-epoch trial lost this way). So while a sweep runs every checkpoint is kept, and only
once the sweep has ended (its final model chosen and registered) does each trial keep
its ``checkpoint.num_to_keep`` best by the objective, plus its latest.
"""

from __future__ import annotations

from typing import Any

from trainables.task import Objective


def prune(results: Any, objective: Objective, keep: int) -> int:
    """Delete every checkpoint that is neither among a trial's ``keep`` best (by
    ``objective``) nor its latest; returns how many were deleted."""
    deleted = 0
    for result in results:
        scored = [
            (checkpoint, metrics)
            for checkpoint, metrics in (result.best_checkpoints or [])
            if objective.metric in metrics
        ]
        scored.sort(key=lambda pair: objective.sort_key(float(pair[1][objective.metric])))
        kept = {checkpoint.path for checkpoint, _ in scored[:keep]}
        if result.checkpoint is not None:
            kept.add(result.checkpoint.path)
        for checkpoint, _ in result.best_checkpoints or []:
            if checkpoint.path in kept:
                continue
            try:
                checkpoint.filesystem.delete_dir(checkpoint.path)
                deleted += 1
            except FileNotFoundError:
                continue  # pruned by an earlier run of this step (a resume)
    return deleted
