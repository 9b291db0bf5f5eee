"""Data handed to the Python API in memory: NumPy arrays, a pandas DataFrame, or a
``tf.data.Dataset``; each becomes a ``Loaded`` like the files of the dataset group, so
it is split, encoded and described the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dnn_sweep.errors import DataError

if TYPE_CHECKING:
    from trainables.data import Loaded


def _is_frame(value: Any) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with MLflow
        return False
    return isinstance(value, pd.DataFrame)


def _materialize(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """A ``tf.data.Dataset`` of (x, y) examples or batches as two arrays (read once, in
    the driver: it must fit in memory, like any in-memory data)."""
    xs, ys = [], []
    for item in dataset.as_numpy_iterator():
        if not isinstance(item, tuple) or len(item) != 2:
            raise DataError("data: a tf.data.Dataset must yield (x, y) pairs")
        xs.append(np.asarray(item[0]))
        ys.append(np.asarray(item[1]))
    if not xs:
        raise DataError("data: the tf.data.Dataset is empty")
    spec = dataset.element_spec[0]
    if not hasattr(spec, "shape"):
        raise DataError("data: a tf.data.Dataset must yield (x, y) with x one tensor")
    batched = spec.shape.rank and spec.shape[0] is None  # (None, ...): batches
    join = np.concatenate if batched else np.stack
    return join(xs), join(ys)


def _pair(value: Any, name: str) -> tuple[Any, Any] | None:
    if value is None:
        return None
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise DataError(f"{name}: must be an (x, y) pair")
    return value[0], value[1]


def _arrays(x: Any, y: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise DataError(f"{name}: x has {len(x)} rows but y has {len(y)}")
    if x.dtype.kind not in "iufb" or x.ndim < 2:
        raise DataError(
            f"{name}: x must be numbers, one row per example (dtype {x.dtype}, shape {x.shape})"
        )
    return x, y


def _frame(x: Any, y: Any, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A DataFrame holding the target column (``dataset.target``, else ``y``'s name)."""
    if y is None:
        return x, options
    target = options.get("target") or getattr(y, "name", None) or "target"
    if target in x.columns:
        raise DataError(f"dataset.target={target}: x already has that column; pass y or not")
    frame = x.assign(**{str(target): np.asarray(y)})
    return frame, {**options, "target": str(target)}


def from_memory(
    options: dict[str, Any],
    seed: int,
    x: Any = None,
    y: Any = None,
    data: Any = None,
    validation_data: Any = None,
    test_data: Any = None,
) -> Loaded:
    """The ``Loaded`` for in-memory data: ``x``/``y`` (arrays, or a DataFrame and its
    target), or ``data`` (a DataFrame holding ``dataset.target``, or a tf.data.Dataset);
    ``validation_data`` / ``test_data`` as (x, y) pairs (or DataFrames) replace the
    carved-out splits. ``options`` are the dataset group's (sizes, target, columns).

    Raises:
        DataError: naming the argument that is wrong.
    """
    from trainables.data import from_arrays
    from trainables.tables import table_from_frame

    if data is not None and x is not None:
        raise DataError("run_sweep: give x and y, or data, not both")
    if data is not None and not _is_frame(data):
        if not hasattr(data, "as_numpy_iterator"):
            raise DataError(f"data: a DataFrame or a tf.data.Dataset, not {type(data).__name__}")
        x, y = _materialize(data)
    frame = data if _is_frame(data) else (x if _is_frame(x) else None)
    if frame is not None:
        frame, options = _frame(frame, None if data is not None else y, options)
        given = {}
        for part, value in (("validation", validation_data), ("test", test_data)):
            if value is not None:
                name = f"{part}_data"
                other = value if _is_frame(value) else _frame(*_pair(value, name), options)[0]
                given[part] = (other, name)
        return table_from_frame(frame, options, seed, "the DataFrame", given)
    if x is None or y is None:
        raise DataError("run_sweep: give x and y (arrays or a DataFrame), or data")
    x, y = _arrays(x, y, "x/y")
    val, test = _pair(validation_data, "validation_data"), _pair(test_data, "test_data")
    return from_arrays(
        "arrays",
        x,
        y,
        seed,
        kind="features" if x.ndim == 2 else "image",
        scale=255.0 if x.dtype == np.uint8 else None,
        val=_arrays(*val, "validation_data") if val else None,
        test=_arrays(*test, "test_data") if test else None,
        test_size=options.get("test_size", 0.2),
        val_size=options.get("validation_size", 0.2),
    )
