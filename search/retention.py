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

from pathlib import Path
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


def mend(results: Any) -> list[str]:
    """Before a resumed fit: a trial whose latest recorded checkpoint is gone from storage
    (deleted by hand, lost by the storage, or by an older release's pruning) would be
    restored from nothing and recorded FAILED. Put the newest checkpoint of that trial
    that does exist in its place, so it resumes from there (its epoch is read from the
    checkpoint itself); with none left, an empty one: the trial starts again from epoch 0
    (``search.tune_trial`` reads an empty checkpoint as a fresh start). ``results``: the
    restored Tuner's ``get_results()``. Returns a line per mended trial."""
    from pyarrow import fs as pafs

    mended = []
    for result in results:
        checkpoint = result.checkpoint
        if checkpoint is None or _exists(checkpoint.filesystem, checkpoint.path):
            continue
        newest = _newest_checkpoint(checkpoint.filesystem, result.path)
        gone = Path(checkpoint.path).name
        checkpoint.filesystem.create_dir(checkpoint.path)
        if newest is None:
            mended.append(f"{gone} was gone, and no other: that trial starts again")
            continue
        pafs.copy_files(
            newest,
            checkpoint.path,
            source_filesystem=checkpoint.filesystem,
            destination_filesystem=checkpoint.filesystem,
        )
        mended.append(f"{gone} was gone: that trial continues from {Path(newest).name}")
    return mended


def _exists(filesystem: Any, path: str) -> bool:
    from pyarrow import fs as pafs

    return filesystem.get_file_info(path).type != pafs.FileType.NotFound


def _newest_checkpoint(filesystem: Any, trial_dir: str) -> str | None:
    from pyarrow import fs as pafs

    found = filesystem.get_file_info(pafs.FileSelector(trial_dir, allow_not_found=True))
    folders = [
        info.path
        for info in found
        if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_")
    ]
    return max(folders, default=None)
