"""Checkpoint retention: nothing is deleted while a sweep runs (Tune keeps every
checkpoint); afterwards each trial keeps its best N by the objective and its latest.
On resume, a recorded checkpoint that is gone is mended from the newest that exists."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs

from search.retention import mend, prune
from trainables.task import Objective


@dataclass
class Checkpoint:
    path: str
    filesystem: pafs.FileSystem = field(default_factory=pafs.LocalFileSystem)


@dataclass
class Result:
    best_checkpoints: list
    checkpoint: Checkpoint | None
    path: str = ""


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


def test_a_gone_checkpoint_is_replaced_by_the_newest_that_exists(tmp_path):
    result = make(tmp_path, [5.0, 3.0, 4.0])
    result.path = str(tmp_path)
    (tmp_path / "checkpoint_000001" / "model.keras").write_text("epoch 2")
    gone = tmp_path / "checkpoint_000002"
    for f in gone.iterdir():
        f.unlink()
    gone.rmdir()  # what Tune recorded as the trial's latest is no longer on storage
    (line,) = mend([result])
    assert line == "checkpoint_000002 was gone: that trial continues from checkpoint_000001"
    assert (gone / "model.keras").read_text() == "epoch 2"
    assert mend([result]) == []  # nothing left to mend


def test_with_no_checkpoint_left_the_trial_starts_again(tmp_path):
    result = make(tmp_path, [5.0])
    result.path = str(tmp_path)
    gone = tmp_path / "checkpoint_000000"
    (gone / "model.keras").unlink()
    gone.rmdir()
    (line,) = mend([result])
    assert "no other: that trial starts again" in line
    assert gone.is_dir() and not list(gone.iterdir())  # read as a fresh start


def test_finished_or_intact_trials_are_left_alone(tmp_path):
    result = make(tmp_path, [5.0, 3.0])
    result.path = str(tmp_path)
    assert mend([result, Result([], None, str(tmp_path))]) == []
