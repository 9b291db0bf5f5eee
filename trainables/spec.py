"""What a model needs to know about its data, without the rows: the input's shape and
training-split statistics (``InputSpec``) and the task (``DataSpec``).

Computed once in the driver from the training split, shared with every trial, and given
to model builders (ours, or a user's ``build_model(params, spec)``). Statistics are
baked into the model's own preprocessing layers, so the exported model takes raw values.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainables.task import Task

INPUT_KINDS = ("features", "image", "table")
COLUMN_KINDS = ("numeric", "categorical")


@dataclass(frozen=True, eq=False)
class ColumnSpec:
    """One table column as the model sees it.

    Attributes:
        name: the column's name in the user's table.
        key: the model input's name (Keras and SavedModel signatures allow
            ``[A-Za-z0-9_.-]``).
        kind: ``numeric`` (float32, blanks are NaN) or ``categorical`` (strings, blanks
            are ``""``).
        mean / variance / max_abs: numeric: training-split statistics, NaN ignored.
        missing: numeric: the training split had blanks; the model adds an indicator.
        vocabulary: categorical: training-split values, most frequent first.
        max_categories: categorical: the vocabulary's cap (``dataset.max_categories``).
    """

    name: str
    key: str
    kind: str
    mean: float = 0.0
    variance: float = 1.0
    max_abs: float = 1.0
    missing: bool = False
    vocabulary: tuple[str, ...] = ()
    max_categories: int = 1000


@dataclass(frozen=True, eq=False)
class InputSpec:
    """The model's input.

    Attributes:
        kind: ``features`` (a vector per example), ``image`` (height x width x channels)
            or ``table`` (one named input per column).
        shape: one example's shape (features: ``(d,)``; image: ``(h, w, c)``).
        scale: features/image: the largest absolute training value (``input_norm=scale``
            divides by it: 255 for 8-bit pixels).
        mean / std: features/image: per-value training statistics, flattened
            (``input_norm=standardize``).
        columns: table only.
        pixels: the values are pixel intensities (``input_norm=auto`` scales them;
            anything else is standardized).
    """

    kind: str
    shape: tuple[int, ...] = ()
    scale: float = 1.0
    pixels: bool = False
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    columns: tuple[ColumnSpec, ...] = ()

    def norm(self, input_norm: str) -> str:
        """The normalization ``input_norm`` means for these inputs (resolves ``auto``)."""
        if input_norm != "auto":
            return input_norm
        return "scale" if self.pixels else "standardize"

    @property
    def size(self) -> int:
        """Values per example once flattened (features/images)."""
        return int(np.prod(self.shape)) if self.shape else 0

    @property
    def categorical(self) -> tuple[ColumnSpec, ...]:
        return tuple(c for c in self.columns if c.kind == "categorical")

    def describe(self) -> str:
        if self.kind == "table":
            n_cat = len(self.categorical)
            return f"table of {len(self.columns) - n_cat} numeric + {n_cat} categorical columns"
        return f"{self.kind} {'x'.join(map(str, self.shape))}"

    def schema_digest(self) -> str:
        """What a served model takes (kind, shape or column names and kinds), as a
        digest: versions of one registered model must all agree on it."""
        columns = [(c.name, c.kind) for c in self.columns]
        return digest(json.dumps([self.kind, list(self.shape), columns]).encode())


@dataclass(frozen=True, eq=False)
class DataSpec:
    """Everything a model builder is given about the data: its input and its task."""

    inputs: InputSpec
    task: Task
    name: str = "data"
    sizes: dict[str, int] = field(default_factory=dict)


def digest(*parts: Any) -> str:
    """A short content digest (12 hex digits) of bytes, arrays, or dicts of arrays (a
    table's columns, by key): how MLflow's dataset inputs and the registry's test-set
    comparison tell data apart."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, dict):
            for key in sorted(part):
                h.update(str(key).encode())
                h.update(digest(part[key]).encode())
        elif isinstance(part, bytes):
            h.update(part)
        else:
            array = np.ascontiguousarray(part)
            if array.dtype == object:  # strings and blanks: hash the values, not pointers
                import pandas as pd

                array = pd.util.hash_array(array.ravel())
            h.update(f"{array.dtype}{array.shape}".encode())
            h.update(array.tobytes())
    return h.hexdigest()[:12]


def input_key(name: str, taken: set[str]) -> str:
    """A SavedModel-safe, unique input name for table column ``name``."""
    key = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name)).strip("_") or "column"
    if not key[0].isalnum():
        key = f"c{key}"
    candidate, i = key, 1
    while candidate in taken:
        i += 1
        candidate = f"{key}_{i}"
    taken.add(candidate)
    return candidate


def feature_stats(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(largest absolute value, per-value mean, per-value std) of a training split,
    flattened per example; for ``input_norm`` scale and standardize."""
    flat = x.reshape(len(x), -1).astype(np.float32)
    scale = float(np.max(np.abs(flat))) if flat.size else 1.0
    return scale if scale > 0 else 1.0, flat.mean(axis=0), flat.std(axis=0)
