"""Checkpoint retention: nothing is deleted while a sweep runs (Tune keeps every
checkpoint); afterwards each trial keeps its best N by the objective and its latest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs

from search.retention import prune
from trainables.task import Objective


@dataclass
class Checkpoint:
    path: str
    filesystem: pafs.FileSystem = field(default_factory=pafs.LocalFileSystem)


@dataclass
class Result:
    best_checkpoints: list
    checkpoint: Checkpoint | None


def make(tmp_path: Path, values: list[float]) -> Result:
    pairs = []
    for i, value in enumerate(values):
        folder = tmp_path / f"checkpoint_{i:06d}"
        folder.mkdir()
        (folder / "model.keras").write_text("x")
        pairs.append((Checkpoint(str(folder)), {"val_rmse": value}))
    return Result(pairs, pairs[-1][0])


def test_keeps_the_best_by_the_objective_and_the_latest(tmp_path):
    result = make(tmp_path, [5.0, 3.0, 4.0, 2.5, 6.0])
    assert prune([result], Objective("val_rmse", "min"), keep=2) == 2
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["checkpoint_000001", "checkpoint_000003", "checkpoint_000004"]
    assert prune([result], Objective("val_rmse", "min"), keep=2) == 0  # again: nothing


def test_a_trial_without_checkpoints_is_fine():
    assert prune([Result([], None)], Objective("val_accuracy", "max"), keep=2) == 0
