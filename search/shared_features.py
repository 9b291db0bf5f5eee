"""The frozen-layer cache shared between a transfer sweep's trials, through Ray's object
store: the first trial to freeze the source's bottom ``n`` blocks computes their outputs
on the training and validation splits; every later trial (and re-check) that freezes the
same ``n`` blocks trains on those arrays, read zero-copy from the object store.

The outputs depend only on the source, ``n`` and the data (frozen blocks run as at
inference, with the source's weights), all fixed for a sweep, so one holder per sweep
keyed by ``n`` shares more than a key of (reuse_layers, freeze_layers) would. An actor
holds the arrays: it puts them itself, so they outlive the trial that computed them
(an object lives as long as its owner) and go when the sweep ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


class _Holder:
    """A Ray actor: the object refs of computed frozen outputs, by key, and counts of
    how often each was computed and reused."""

    def __init__(self) -> None:
        self.refs: dict[str, Any] = {}
        self.counts = {"computed": 0, "reused": 0, "bytes": 0}

    def get(self, key: str) -> list[Any] | None:
        """[the ref] (a ref inside a list stays this actor's), or None."""
        if key not in self.refs:
            return None
        self.counts["reused"] += 1
        return [self.refs[key]]

    def put(self, key: str, arrays: tuple[np.ndarray, ...]) -> None:
        import ray

        self.counts["computed"] += 1
        if key not in self.refs:  # two trials may compute one key at once: keep the first
            self.refs[key] = ray.put(arrays)
            self.counts["bytes"] += sum(a.nbytes for a in arrays)

    def stats(self) -> dict[str, int]:
        return {**self.counts, "entries": len(self.refs)}


@dataclass(frozen=True)
class SharedFeatures:
    """What a trial is handed (``trainables.transfer.FeatureStore``): the holder's handle."""

    holder: Any

    def get(self, key: str) -> tuple[np.ndarray, ...] | None:
        import ray

        found = ray.get(self.holder.get.remote(key))
        return None if found is None else ray.get(found[0])

    def put(self, key: str, arrays: tuple[np.ndarray, ...]) -> None:
        import ray

        ray.get(self.holder.put.remote(key, arrays))

    def stats(self) -> dict[str, int]:
        import ray

        return ray.get(self.holder.stats.remote())


@contextlib.contextmanager
def shared_features() -> Iterator[SharedFeatures]:
    """A holder for one sweep (Ray must be running), killed on the way out: its arrays
    leave the object store with it."""
    import ray

    holder = ray.remote(num_cpus=0)(_Holder).remote()
    try:
        yield SharedFeatures(holder)
    finally:
        ray.kill(holder)
