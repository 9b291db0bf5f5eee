"""The built-in datasets: Fashion-MNIST (IDX files) and scikit-learn's 8x8 digits."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dnn_sweep.errors import DataError, reason
from trainables.options import known_options

if TYPE_CHECKING:
    from trainables.data import Loaded

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE_FASHION_MNIST = Path("~/.keras/datasets/fashion-mnist").expanduser()
FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
HOW_TO_GET_FASHION = (
    "install Debian's package (apt-get install dataset-fashion-mnist) "
    "or set dataset.path=DIR to a folder holding the four IDX files"
)

# IDX type byte -> numpy big-endian dtype (http://yann.lecun.com/exdb/mnist/ format).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array.

    Raises:
        DataError: naming the file, when it is truncated or not IDX.
    """
    import zlib

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # a damaged .gz: any of the three
        raise DataError(f"{path}: cannot read IDX file ({reason(exc)})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX data holds {len(raw) - header} bytes, its header {shape} says {expected}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _read_fashion_folder(folder: Path) -> dict[str, np.ndarray] | None:
    paths = {key: _find_idx(folder, stem) for key, stem in FASHION_FILES.items()}
    if any(p is None for p in paths.values()):
        return None
    return {key: read_idx(p) for key, p in paths.items()}  # type: ignore[arg-type]


def load_fashion_mnist_arrays(path: str | None = None) -> dict[str, np.ndarray]:
    """Fashion-MNIST's four arrays, from ``path``, Debian's package, or Keras' cache.

    A configured ``path`` must hold the files (no silent fallback to another copy).
    """
    if path:
        folder = Path(path).expanduser()
        arrays = _read_fashion_folder(folder)
        if arrays is None:
            raise DataError(
                f"dataset.path={path}: no Fashion-MNIST IDX files there "
                f"(expected {', '.join(FASHION_FILES.values())}, optionally .gz)"
            )
        return arrays
    for folder in (DEBIAN_FASHION_MNIST, KERAS_CACHE_FASHION_MNIST):
        arrays = _read_fashion_folder(folder)
        if arrays is not None:
            return arrays
    try:  # last resort: Keras' own download (needs the internet)
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
        raise DataError(
            f"Fashion-MNIST not found in {DEBIAN_FASHION_MNIST} or "
            f"{KERAS_CACHE_FASHION_MNIST} and the download failed ({type(exc).__name__}): "
            + HOW_TO_GET_FASHION
        ) from exc
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def load_fashion_mnist(options: dict[str, Any], seed: int) -> Loaded:
    """Fashion-MNIST flattened to 784 uint8 features; its official 10k test set, and
    ``validation_size`` (default 5000) carved from the 60k training images."""
    from trainables.data import from_arrays

    known_options(options, ("path", "validation_size"), "fashion_mnist")
    a = load_fashion_mnist_arrays(options.get("path"))
    return from_arrays(
        "fashion_mnist",
        a["x_train"].reshape(len(a["x_train"]), -1),
        a["y_train"].astype(np.int64),
        seed,
        scale=255.0,
        test=(a["x_test"].reshape(len(a["x_test"]), -1), a["y_test"].astype(np.int64)),
        val_size=options.get("validation_size", 5000),
    )


def load_digits(options: dict[str, Any], seed: int) -> Loaded:
    """scikit-learn's 8x8 digits (values 0..16): seeded, stratified test and validation."""
    from sklearn.datasets import load_digits as sk_load_digits

    from trainables.data import from_arrays

    known_options(options, ("test_size", "validation_size"), "digits")
    bunch = sk_load_digits()
    return from_arrays(
        "digits",
        bunch.data.astype(np.uint8),
        bunch.target.astype(np.int64),
        seed,
        scale=16.0,
        test_size=options.get("test_size", 360),
        val_size=options.get("validation_size", 288),
    )
