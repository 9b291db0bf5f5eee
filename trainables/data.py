"""Datasets as numpy arrays: IDX reader, Fashion-MNIST, scikit-learn digits, seeded splits.

Pixels stay uint8 (4x less memory than float32, shared zero-copy through Ray's object
store); the model rescales them in its first layer.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

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


class DataError(ValueError):
    """A dataset file is missing or malformed, or a dataset option is invalid."""


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test splits of a classification dataset.

    ``x_*`` are 2-D (examples x features) raw values in ``[0, scale]``; ``y_*`` int labels.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    scale: float
    feature_mean: np.ndarray | None = None
    feature_std: np.ndarray | None = None
    classes: tuple[int, ...] | None = None

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array.

    Raises:
        DataError: naming the file, when it is truncated or not IDX.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from exc
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


def validation_split(
    x: np.ndarray, y: np.ndarray, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve a fixed, seeded validation set of ``size`` examples out of (x, y)."""
    if not 0 < size < len(y):
        raise DataError(f"dataset.validation_size={size}: must be between 1 and {len(y) - 1}")
    order = np.random.default_rng(seed).permutation(len(y))
    val, train = np.sort(order[:size]), np.sort(order[size:])
    return x[train], y[train], x[val], y[val]


def load_fashion_mnist(
    path: str | None = None, validation_size: int = 5000, seed: int = 0
) -> Dataset:
    """Fashion-MNIST flattened to 784 uint8 features: 55k/5k/10k by default."""
    a = load_fashion_mnist_arrays(path)
    x_train = a["x_train"].reshape(len(a["x_train"]), -1)
    x_test = a["x_test"].reshape(len(a["x_test"]), -1)
    x_tr, y_tr, x_val, y_val = validation_split(x_train, a["y_train"], validation_size, seed)
    return Dataset(
        "fashion_mnist",
        x_tr,
        y_tr.astype(np.int64),
        x_val,
        y_val.astype(np.int64),
        x_test,
        a["y_test"].astype(np.int64),
        n_classes=10,
        scale=255.0,
    )


def load_digits(test_size: int = 360, validation_size: int = 288, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (values 0..16) with seeded, stratified test split."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    x = bunch.data.astype(np.uint8)
    y = bunch.target.astype(np.int64)
    if not 0 < test_size < len(y):
        raise DataError(f"dataset.test_size={test_size}: must be between 1 and {len(y) - 1}")
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    x_tr, y_tr, x_val, y_val = validation_split(x_rest, y_rest, validation_size, seed)
    return Dataset("digits", x_tr, y_tr, x_val, y_val, x_test, y_test, n_classes=10, scale=16.0)


LOADERS = {"fashion_mnist": load_fashion_mnist, "digits": load_digits}


def select_classes(ds: Dataset, classes: list[int]) -> Dataset:
    """Keep only ``classes`` in every split, relabelled 0..k-1 in the order given
    (e.g. digits 0-4 of the seed's exercise 8, 5-9 for the transfer exercise 9)."""
    if (
        not classes
        or len(set(classes)) != len(classes)
        or any(
            isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < ds.n_classes
            for c in classes
        )
    ):
        raise DataError(
            f"dataset.classes={classes}: must list distinct class ids in 0..{ds.n_classes - 1}"
        )
    lookup = np.full(ds.n_classes, -1, dtype=np.int64)
    lookup[classes] = np.arange(len(classes))

    def keep(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = lookup[y] >= 0
        return x[mask], lookup[y[mask]]

    x_tr, y_tr = keep(ds.x_train, ds.y_train)
    x_val, y_val = keep(ds.x_val, ds.y_val)
    x_te, y_te = keep(ds.x_test, ds.y_test)
    return replace(
        ds,
        x_train=x_tr,
        y_train=y_tr,
        x_val=x_val,
        y_val=y_val,
        x_test=x_te,
        y_test=y_te,
        n_classes=len(classes),
        classes=tuple(classes),
    )


def cap_per_class(ds: Dataset, cap: int, seed: int) -> Dataset:
    """Keep at most ``cap`` training examples per class (seeded choice); validation and
    test stay whole so scores remain comparable (exercise 9: 100 images per digit)."""
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise DataError(f"dataset.max_per_class={cap!r}: must be an integer >= 1")
    rng = np.random.default_rng(seed)
    keep = np.sort(
        np.concatenate(
            [rng.permutation(np.flatnonzero(ds.y_train == c))[:cap] for c in range(ds.n_classes)]
        )
    )
    return replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep])


def with_feature_stats(ds: Dataset) -> Dataset:
    """Per-feature mean and std of the training split, for input standardization.
    Computed once in the driver, shared by every trial."""
    x = ds.x_train.astype(np.float32)
    return replace(ds, feature_mean=x.mean(axis=0), feature_std=x.std(axis=0))


def load_dataset(options: dict[str, Any], seed: int) -> Dataset:
    """Load the dataset the ``dataset`` config group describes.

    Options common to every dataset: ``classes`` (keep and relabel these classes),
    ``max_per_class`` (cap the training examples per class) and ``split_seed`` (seeds
    the validation split and the cap instead of the sweep's ``seed``, so sweeps with
    different seeds can be compared on the same split).
    """
    options = {k: v for k, v in options.items() if v is not None}
    split_seed = options.pop("split_seed", None)
    if split_seed is not None:
        if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
            raise DataError(f"dataset.split_seed={split_seed!r}: allowed is an integer >= 0")
        seed = split_seed
    name = options.pop("name", None)
    classes = options.pop("classes", None)
    cap = options.pop("max_per_class", None)
    if name not in LOADERS:
        raise DataError(f"dataset.name={name}: allowed are {', '.join(LOADERS)}")
    try:
        ds = LOADERS[name](**options, seed=seed)
    except TypeError as exc:
        raise DataError(f"dataset ({name}): unknown option ({exc})") from exc
    if classes is not None:
        ds = select_classes(ds, list(classes))
    if cap is not None:
        ds = cap_per_class(ds, cap, seed)
    return with_feature_stats(ds)
