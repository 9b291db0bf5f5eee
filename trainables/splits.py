"""Seeded train / validation / test splits, stratified for classification.

Every row gets a 64-bit key: a seeded random number (arrays, built-in datasets) or a
seeded hash of its content (tables) or of its file path (images). Within each stratum
(class), the rows with the smallest keys go to test, the next ones to validation, the rest
to training; the cut is expressed as key cutoffs per stratum, so a trial streaming the
rows through Ray Data, which sees one batch at a time, assigns each row exactly as the
in-memory path does. Rows with equal keys (duplicates) always land in the same split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnn_sweep.errors import DataError

TRAIN, VAL, TEST = 0, 1, 2
_HASH_KEY = "dnn-sweep-split"  # + seed, 16 characters for pandas' hash


class SplitError(DataError):
    """A split size is out of range (the message names the config key)."""


def resolve_size(value: float | int, n: int, key: str) -> int:
    """``value`` as a number of rows: a count (int >= 1) or a fraction in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SplitError(f"{key}={value!r}: must be a count of rows or a fraction in (0, 1)")
    if isinstance(value, float) and 0 < value < 1:
        return max(1, round(value * n))
    if isinstance(value, int) and 0 < value < n:
        return value
    raise SplitError(
        f"{key}={value!r}: must be a count between 1 and {n - 1} or a fraction in (0, 1) ({n} rows)"
    )


def random_keys(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**63, size=n, dtype=np.uint64)


def hash_keys(frame, seed: int) -> np.ndarray:  # noqa: ANN001 - a pandas DataFrame
    """Seeded 64-bit hash of each row's values (pandas' ``hash_pandas_object``): the same
    row gets the same key in any process, batch or file order."""
    import pandas as pd

    hash_key = f"{_HASH_KEY}{seed}"[-16:].rjust(16, "0")
    return pd.util.hash_pandas_object(frame, index=False, hash_key=hash_key).to_numpy(np.uint64)


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """``total`` rows shared among strata in proportion to ``counts``, largest remainder
    first (scikit-learn's stratified splits do the same), never more than a stratum has."""
    if total <= 0 or counts.sum() == 0:
        return np.zeros_like(counts)
    exact = counts * total / counts.sum()
    share = np.minimum(np.floor(exact).astype(np.int64), counts)
    order = np.argsort(-(exact - share), kind="stable")
    for i in order:
        if share.sum() >= total:
            break
        if share[i] < counts[i]:
            share[i] += 1
    return share


@dataclass(frozen=True)
class Cutoffs:
    """Per stratum: keys below ``test`` are test rows, below ``val`` validation rows.
    ``strata`` lists the stratum values (one ``None`` stratum when not stratified)."""

    strata: tuple
    test: tuple[int, ...]
    val: tuple[int, ...]


def _cut(sorted_keys: np.ndarray, rank: int) -> int:
    return int(sorted_keys[rank]) if rank < len(sorted_keys) else 2**64 - 1


def cutoffs(keys: np.ndarray, strata: np.ndarray | None, n_test: int, n_val: int) -> Cutoffs:
    """The cutoffs that put ``n_test`` and ``n_val`` rows (shared in proportion among
    strata) in test and validation."""
    if strata is None:
        groups, labels = (None,), np.zeros(len(keys), dtype=np.int64)
    else:
        groups, labels = np.unique(strata, return_inverse=True)
        groups = tuple(groups.tolist())
    counts = np.bincount(labels, minlength=len(groups))
    tests = _allocate(counts, n_test)
    vals = _allocate(counts - tests, n_val)
    cut_test, cut_val = [], []
    for g in range(len(groups)):
        ordered = np.sort(keys[labels == g])
        cut_test.append(_cut(ordered, int(tests[g])))
        cut_val.append(_cut(ordered, int(tests[g] + vals[g])))
    return Cutoffs(groups, tuple(cut_test), tuple(cut_val))


def assign(keys: np.ndarray, strata: np.ndarray | None, cuts: Cutoffs) -> np.ndarray:
    """TRAIN / VAL / TEST for each row. A stratum the cutoffs never saw goes to train."""
    out = np.full(len(keys), TRAIN, dtype=np.int8)
    for group, test, val in zip(cuts.strata, cuts.test, cuts.val, strict=True):
        rows = np.ones(len(keys), bool) if group is None else np.asarray(strata == group)
        out[rows & (keys < np.uint64(val))] = VAL
        out[rows & (keys < np.uint64(test))] = TEST
    return out


def split_rows(
    keys: np.ndarray, strata: np.ndarray | None, n_test: int, n_val: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of (train, validation, test)."""
    which = assign(keys, strata, cutoffs(keys, strata, n_test, n_val))
    return tuple(np.flatnonzero(which == s) for s in (TRAIN, VAL, TEST))  # type: ignore[return-value]
