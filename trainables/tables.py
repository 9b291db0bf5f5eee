"""``dataset=table``: a CSV or Parquet table, its columns typed once, its rows split by a
seeded hash of their content.

Numeric columns are standardized (or scaled) and imputed inside the model, categorical
ones looked up in a vocabulary inside the model (one-hot or an embedding), so the
registered model takes raw rows. Every statistic comes from the training split only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dnn_sweep.errors import DataError, reason
from trainables.options import known_options, path_option
from trainables.rows import CATEGORICAL, NUMERIC, as_frame, column_values, to_inputs
from trainables.spec import ColumnSpec, InputSpec, input_key
from trainables.splits import hash_keys

if TYPE_CHECKING:
    import pandas as pd

    from trainables.data import Loaded

FORMATS = ("csv", "parquet")
OPTIONS = (
    "path",
    "target",
    "features",
    "categorical",
    "test_path",
    "validation_path",
    "test_size",
    "validation_size",
    "max_categories",
    "format",
)


def table_format(path: str, configured: str | None, key: str = "dataset.path") -> str:
    """``csv`` or ``parquet``: ``dataset.format``, else the file name's suffix."""
    if configured not in (None, "auto"):
        if configured not in FORMATS:
            raise DataError(f"dataset.format={configured}: allowed are auto, csv, parquet")
        return configured
    name = path.lower().rstrip("/")
    if name.endswith((".parquet", ".pq")) or (
        Path(path).is_dir() and any(Path(path).glob("*.parquet"))
    ):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
        return "csv"
    if "://" not in path and not Path(path).exists():
        raise DataError(f"{key}={path}: no such file or folder")
    raise DataError(f"{key}={path}: cannot tell CSV from Parquet by its name; set dataset.format")


def read_table(path: str, fmt: str, key: str) -> pd.DataFrame:
    """The whole file as a DataFrame (local path or an fsspec URI pandas can read)."""
    import pandas as pd

    from trainables.files import check_table

    if "://" not in path and not Path(path).exists():
        raise DataError(f"{key}={path}: no such file")
    check_table(path, fmt, key)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            # pyarrow parses as Ray Data does (the streaming path): the same numbers
            frame = pd.read_csv(
                path, sep="\t" if path.lower().endswith(".tsv") else ",", engine="pyarrow"
            )
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
        raise DataError(f"{key}={path}: cannot read it as {fmt.upper()} ({reason(exc)})") from exc
    if frame.empty:
        raise DataError(f"{key}={path}: the table has no rows")
    return frame


def column_names(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise DataError(f"{key}={value!r}: must be a column name or a list of column names")


def _check_columns(frame: pd.DataFrame, names: list[str], key: str, path: str) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        shown = ", ".join(map(str, frame.columns[:30]))
        raise DataError(f"{key}={missing[0]}: no such column in {path}; columns are {shown}")


def column_kinds(
    frame: pd.DataFrame, features: list[str], categorical: list[str]
) -> list[tuple[str, str]]:
    """(name, kind) per feature: ``dataset.categorical`` ones, and any non-numeric column,
    are categorical; numbers and booleans are numeric."""
    import pandas as pd

    kinds = []
    for name in features:
        dtype = frame[name].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        kinds.append((name, CATEGORICAL if name in categorical or not numeric else NUMERIC))
    return kinds


def _target(frame: pd.DataFrame, targets: list[str], kinds: list[str] | None = None) -> np.ndarray:
    """Targets as the task sees them: numbers as float64 (NaN for blanks), labels as
    strings ("" for blanks); several columns (multilabel) as a 2-D array. ``kinds``
    (numeric/categorical per target) default to the frame's own dtypes."""
    from trainables.table_scan import target_kinds

    arrays = []
    for name, kind in zip(targets, kinds or target_kinds(frame, targets), strict=True):
        series = frame[name]
        if kind == NUMERIC:
            arrays.append(column_values(series, NUMERIC).astype(np.float64))
        else:
            arrays.append(column_values(series, CATEGORICAL))
    if len(arrays) == 1:
        return arrays[0]
    if any(a.dtype.kind not in "f" for a in arrays):
        raise DataError(
            f"dataset.target={targets}: several target columns must each hold 0/1 (multilabel)"
        )
    return np.stack(arrays, axis=1)


def _missing_target(y: np.ndarray) -> np.ndarray:
    if y.dtype.kind == "f":
        return np.isnan(y).any(axis=1) if y.ndim == 2 else np.isnan(y)
    return y == ""


def frame_rows(
    frame: pd.DataFrame,
    columns: list[ColumnSpec],
    targets: list[str],
    path: str,
    key: str,
    kinds: list[str] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    """(model inputs, targets, rows dropped for a blank target) of a frame."""
    _check_columns(frame, [c.name for c in columns] + targets, key, path)
    y = _target(frame, targets, kinds)
    keep = ~_missing_target(y)
    inputs = to_inputs(frame[keep], [(c.name, c.key, c.kind) for c in columns])
    return inputs, y[keep], int((~keep).sum())


def table_keys(inputs: dict[str, np.ndarray], y: np.ndarray, seed: int) -> np.ndarray:
    """Each row's split key: a seeded hash of its model inputs and target."""
    targets = y.reshape(len(y), -1)
    columns = {f"__target_{i}__": targets[:, i] for i in range(targets.shape[1])}
    return hash_keys(as_frame({**inputs, **columns}), seed)


def load_table(options: dict[str, Any], seed: int) -> Loaded:
    """Read ``dataset.path`` (and ``test_path`` / ``validation_path`` if given)."""
    known_options(options, OPTIONS, "table")
    path = path_option(options, "table", "a CSV or Parquet file (or folder)")
    fmt = table_format(path, options.get("format"))
    given = {}
    for part in ("test", "validation"):
        other = options.get(f"{part}_path")
        if other:
            key = f"dataset.{part}_path"
            own = table_format(str(other), options.get("format"), key)
            given[part] = (read_table(str(other), own, key), key)
    return table_from_frame(read_table(path, fmt, "dataset.path"), options, seed, path, given)


def table_from_frame(
    frame: pd.DataFrame,
    options: dict[str, Any],
    seed: int,
    source: str = "the table",
    given: dict[str, tuple[pd.DataFrame, str]] | None = None,
) -> Loaded:
    """A ``Loaded`` table from a DataFrame (a file's, or one given to the Python API);
    ``given`` holds separate test/validation frames ({"test": (frame, config key)})."""
    from trainables.data import Loaded

    targets = column_names(options.get("target"), "dataset.target")
    if not targets:
        raise DataError(
            f"dataset.target: name the column to predict; {source} has "
            + ", ".join(map(str, frame.columns[:30]))
        )
    _check_columns(frame, targets, "dataset.target", source)
    columns = table_columns(frame, options, targets, source)
    inputs, y, dropped = frame_rows(frame, columns, targets, source, "dataset.path")
    loaded = Loaded(
        Path(source).stem if source != "the table" else "table",
        inputs,
        y,
        table_keys(inputs, y, seed),
        InputSpec("table", columns=tuple(columns)),
        test_size=options.get("test_size", 0.2),
        val_size=options.get("validation_size", 0.2),
        target_name=",".join(targets),
        label_names=tuple(targets) if len(targets) > 1 else (),
        notes=[f"dropped {dropped} rows without a target"] if dropped else [],
    )
    for part, (other, key) in (given or {}).items():
        x_o, y_o, _ = frame_rows(other, columns, targets, key, key)
        setattr(loaded, "test" if part == "test" else "val", (x_o, y_o))
    return loaded


def table_columns(
    frame: pd.DataFrame, options: dict[str, Any], targets: list[str], path: str
) -> list[ColumnSpec]:
    """The feature columns (``dataset.features``, else all but the target) with their
    kinds and input names; statistics come later, from the training split."""
    features = column_names(options.get("features"), "dataset.features") or [
        str(c) for c in frame.columns if c not in targets
    ]
    _check_columns(frame, features, "dataset.features", path)
    overlap = set(features) & set(targets)
    if overlap:
        raise DataError(f"dataset.features: {sorted(overlap)[0]} is the target; leave it out")
    if not features:
        raise DataError(f"dataset.features: {path} has no column besides the target")
    categorical = column_names(options.get("categorical"), "dataset.categorical")
    unknown = [c for c in categorical if c not in features]
    if unknown:
        raise DataError(
            f"dataset.categorical={unknown[0]}: not a feature column; features are "
            + ", ".join(features[:30])
        )
    taken: set[str] = set()
    max_categories = options.get("max_categories", 1000)
    if (
        isinstance(max_categories, bool)
        or not isinstance(max_categories, int)
        or max_categories < 1
    ):
        raise DataError(f"dataset.max_categories={max_categories!r}: must be an integer >= 1")
    return [
        ColumnSpec(name, input_key(name, taken), kind, max_categories=max_categories)
        for name, kind in column_kinds(frame, features, categorical)
    ]


def column_stats(columns: tuple[ColumnSpec, ...], x_train: dict[str, np.ndarray]) -> tuple:
    """Each column with its training-split statistics: numeric mean, variance, largest
    absolute value and whether it had blanks; categorical vocabulary (most frequent
    first, ties by value, at most ``dataset.max_categories``; rarer values share the
    out-of-vocabulary slot)."""
    import pandas as pd

    out = []
    for c in columns:
        values = x_train[c.key]
        if c.kind == NUMERIC:
            finite = values[np.isfinite(values)]
            if finite.size:
                mean, var = float(finite.mean()), float(finite.var())
                top = float(np.abs(finite).max()) or 1.0
            else:
                mean, var, top = 0.0, 1.0, 1.0
            missing = bool(finite.size < values.size)
            out.append(replace(c, mean=mean, variance=var, max_abs=top, missing=missing))
        else:
            counts = pd.Series(values).value_counts(sort=False)
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            vocab = tuple(str(v) for v, _ in ranked[: c.max_categories])
            out.append(replace(c, vocabulary=vocab))
    return tuple(out)
