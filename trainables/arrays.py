"""``dataset=arrays``: a NumPy ``.npz`` file with ``x``/``y``, or ``x_train``/``y_train``
and optionally ``x_val``/``y_val`` and ``x_test``/``y_test``.

A 2-D ``x`` is a feature vector per row; 3-D or 4-D is an image per row (height, width
[, channels]), which the model flattens after scaling, and serves in that shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dnn_sweep.errors import DataError, reason
from trainables.options import known_options, path_option

if TYPE_CHECKING:
    from trainables.data import Loaded

OPTIONS = ("path", "test_size", "validation_size")
EXPECTED = "x and y, or x_train and y_train (optionally x_val/y_val, x_test/y_test)"


def _pair(arrays: dict[str, np.ndarray], suffix: str, path: str) -> tuple | None:
    x, y = arrays.get(f"x{suffix}"), arrays.get(f"y{suffix}")
    if x is None and y is None:
        return None
    if x is None or y is None:
        have = "x" if y is None else "y"
        raise DataError(
            f"dataset.path={path}: has {have}{suffix} without its pair; expected {EXPECTED}"
        )
    if len(x) != len(y):
        raise DataError(
            f"dataset.path={path}: x{suffix} has {len(x)} rows but y{suffix} has {len(y)}"
        )
    if x.dtype.kind not in "iufb" or x.ndim < 2:
        raise DataError(
            f"dataset.path={path}: x{suffix} must be numbers, one row per example "
            f"(got dtype {x.dtype}, shape {x.shape})"
        )
    return x, y


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of the file, read once (a truncated member fails here, not in a
    trial).

    Raises:
        DataError: no such file, or not a readable ``.npz`` (a zip of ``.npy`` arrays).
    """
    import zipfile

    if not Path(path).is_file():
        raise DataError(f"dataset.path={path}: no such file")
    if not zipfile.is_zipfile(path):  # np.load would try a .npy, then a pickle
        raise DataError(f"dataset.path={path}: not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except Exception as exc:  # noqa: BLE001 - zip, zlib, .npy header or size: a bad file
        raise DataError(f"dataset.path={path}: not a readable .npz file ({reason(exc)})") from exc


def load_arrays(options: dict[str, Any], seed: int) -> Loaded:
    """Read ``dataset.path``; what it does not hold as test/validation is carved out."""
    from trainables.data import from_arrays

    known_options(options, OPTIONS, "arrays")
    path = path_option(options, "arrays", "a .npz file")
    arrays = read_npz(path)
    main = _pair(arrays, "", path) or _pair(arrays, "_train", path)
    if main is None:
        raise DataError(
            f"dataset.path={path}: holds {', '.join(sorted(arrays)) or 'nothing'}; "
            f"expected {EXPECTED}"
        )
    x, y = main
    shapes = {
        p[0].shape[1:]
        for p in (main, _pair(arrays, "_val", path), _pair(arrays, "_test", path))
        if p
    }
    if len(shapes) > 1:
        raise DataError(f"dataset.path={path}: x arrays differ in row shape ({sorted(shapes)})")
    return from_arrays(
        Path(path).stem,
        x,
        y,
        seed,
        kind="features" if x.ndim == 2 else "image",
        scale=255.0 if x.dtype == np.uint8 else None,
        test=_pair(arrays, "_test", path),
        val=_pair(arrays, "_val", path),
        test_size=options.get("test_size", 0.2),
        val_size=options.get("validation_size", 0.2),
    )
