"""A table too big to hold, described in two streaming passes over its rows (one record
batch in memory at a time, read with pyarrow): first every row's target and split key,
then the training split's column statistics. The rows themselves are read again by each
trial, through Ray Data (``search/streaming.py``), with the same rules: the same
``rows.py`` conversion, the same split keys and cutoffs, so a row lands in the same
split, with the same values, as on the in-memory path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dnn_sweep.errors import DataError, reason
from trainables.rows import CATEGORICAL, NUMERIC, to_inputs
from trainables.spec import ColumnSpec

if TYPE_CHECKING:
    import pandas as pd

    from trainables.splits import Cutoffs

BATCH_ROWS = 65536


def _format(fmt: str) -> Any:
    import pyarrow.dataset as pads

    if fmt == "csv":
        return pads.CsvFileFormat()
    return pads.ParquetFileFormat()


def frames(path: str, fmt: str, key: str, columns: list[str] | None = None) -> Iterator[Any]:
    """The table as pandas frames of at most ``BATCH_ROWS`` rows (local path or a URI
    pyarrow reads, a file or a folder of files)."""
    import pyarrow.dataset as pads

    if "://" not in path and not Path(path).exists():
        raise DataError(f"{key}={path}: no such file")
    try:
        table = pads.dataset(path, format=_format(fmt))
        batches = table.to_batches(  # read ahead one batch: hold one, not the file
            columns=columns, batch_size=BATCH_ROWS, batch_readahead=1, fragment_readahead=1
        )
        for batch in batches:
            yield batch.to_pandas()
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{key}={path}: cannot read it as {fmt.upper()} ({reason(exc)})") from exc


def head(path: str, fmt: str, key: str, rows: int = 1000) -> pd.DataFrame:
    """The first rows: enough to check the columns and decide their kinds."""
    import pandas as pd

    parts, seen = [], 0
    for frame in frames(path, fmt, key):
        parts.append(frame)
        seen += len(frame)
        if seen >= rows:
            break
    if not parts or seen == 0:
        raise DataError(f"{key}={path}: the table has no rows")
    return pd.concat(parts, ignore_index=True).head(rows)


def target_kinds(sample: pd.DataFrame, targets: list[str]) -> list[str]:
    """Each target column read as numbers or as labels (decided once, from a sample,
    so every batch is read the same way)."""
    import pandas as pd

    return [
        NUMERIC
        if pd.api.types.is_numeric_dtype(sample[t]) or pd.api.types.is_bool_dtype(sample[t])
        else CATEGORICAL
        for t in targets
    ]


@dataclass(frozen=True)
class Targets:
    """What the first pass keeps of every row: its target and its split key. Label
    targets are kept as codes into ``labels`` (4 bytes a row, not a Python string)."""

    y: np.ndarray  # numbers (float64), or int32 codes of ``labels``
    keys: np.ndarray
    dropped: int
    labels: tuple[str, ...] | None = None  # label targets: the code -> label table

    def values(self, which: np.ndarray | None = None) -> np.ndarray:
        """The raw targets (of rows ``which``), labels decoded."""
        y = self.y if which is None else self.y[which]
        return y if self.labels is None else np.array(self.labels, dtype=object)[y]

    def distinct(self) -> np.ndarray:
        """Enough of the targets to infer the task from: labels once each, or numbers."""
        return self.y if self.labels is None else np.array(self.labels, dtype=object)


def _codes(y: np.ndarray, table: dict[str, int]) -> np.ndarray:
    """Label targets as int32 codes, ``table`` growing as new labels appear."""
    out = np.empty(len(y), dtype=np.int32)
    for i, value in enumerate(y.tolist()):
        out[i] = table.setdefault(value, len(table))
    return out


def scan_targets(
    path: str,
    fmt: str,
    columns: list[ColumnSpec],
    targets: list[str],
    kinds: list[str],
    seed: int,
) -> Targets:
    """First pass: (targets, split keys) of every row with a target."""
    from trainables.tables import frame_rows, table_keys

    ys, keys, dropped, table = [], [], 0, {}
    labels = len(targets) == 1 and kinds[0] == CATEGORICAL
    for frame in frames(path, fmt, "dataset.path"):
        inputs, y, lost = frame_rows(frame, columns, targets, path, "dataset.path", kinds)
        keys.append(table_keys(inputs, y, seed))
        ys.append(_codes(y, table) if labels else y)
        dropped += lost
    if not ys or sum(len(y) for y in ys) == 0:
        raise DataError(f"dataset.path={path}: no row has a target")
    names = tuple(sorted(table, key=table.get)) if labels else None
    return Targets(np.concatenate(ys), np.concatenate(keys), dropped, names)


@dataclass
class _Accumulator:
    """Running statistics of one column over the training rows."""

    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    top: float = 0.0
    missing: int = 0
    values: Counter = None  # type: ignore[assignment]

    def add(self, column: ColumnSpec, values: np.ndarray) -> None:
        if column.kind == CATEGORICAL:
            self.values = (self.values or Counter()) + Counter(values.tolist())
            return
        finite = values[np.isfinite(values)].astype(np.float64)
        self.count += finite.size
        self.total += float(finite.sum())
        self.squares += float(np.square(finite).sum())
        self.top = max(self.top, float(np.abs(finite).max())) if finite.size else self.top
        self.missing += values.size - finite.size

    def spec(self, column: ColumnSpec) -> ColumnSpec:
        if column.kind == CATEGORICAL:
            ranked = sorted((self.values or Counter()).items(), key=lambda kv: (-kv[1], kv[0]))
            return replace(column, vocabulary=tuple(v for v, _ in ranked[: column.max_categories]))
        if not self.count:
            return replace(column, missing=self.missing > 0)
        mean = self.total / self.count
        variance = max(0.0, self.squares / self.count - mean * mean)
        return replace(
            column,
            mean=mean,
            variance=variance,
            max_abs=self.top or 1.0,
            missing=self.missing > 0,
        )


def scan_stats(
    path: str,
    fmt: str,
    columns: list[ColumnSpec],
    targets: list[str],
    kinds: list[str],
    train: Any,
) -> tuple[ColumnSpec, ...]:
    """Second pass: each column's statistics over the training rows, which
    ``train(inputs, y)`` picks out (a boolean mask per batch)."""
    from trainables.tables import frame_rows

    stats = {c.key: _Accumulator() for c in columns}
    for frame in frames(path, fmt, "dataset.path"):
        inputs, y, _ = frame_rows(frame, columns, targets, path, "dataset.path", kinds)
        keep = train(inputs, y)
        for c in columns:
            stats[c.key].add(c, inputs[c.key][keep])
    return tuple(stats[c.key].spec(c) for c in columns)


def in_split(which: int, cuts: Cutoffs, seed: int, stratify: bool) -> Any:
    """A ``(inputs, y) -> row mask`` for the rows of split ``which`` (``splits.TRAIN``,
    ``VAL`` or ``TEST``): the cutoffs applied to each row's key."""
    from trainables.splits import assign
    from trainables.tables import table_keys

    def mask(inputs: dict[str, np.ndarray], y: np.ndarray) -> np.ndarray:
        keys = table_keys(inputs, y, seed)
        return assign(keys, y if stratify else None, cuts) == which

    return mask


__all__ = ["Targets", "frames", "head", "in_split", "scan_stats", "scan_targets", "to_inputs"]
