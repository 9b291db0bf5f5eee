"""Datasets in memory: each ``dataset`` option's loader, the shared split, class and
target handling, and the statistics the model's preprocessing layers are built from.

A loader (``LOADERS``) reads its files into a ``Loaded`` (raw rows, a split key per row,
and any test or validation rows the user gave); ``load_dataset`` then does what every
dataset shares: seeded, stratified splits, the class filter and per-class cap, the task
(inferred or checked), the target's encoding, and the training-split statistics. Pixels
stay uint8 (4x less memory than float32, shared zero-copy through Ray's object store);
the model rescales them in its first layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from dnn_sweep.errors import DataError
from trainables import builtin
from trainables.spec import DataSpec, InputSpec, digest
from trainables.splits import SplitError, random_keys, resolve_size, split_rows
from trainables.task import Task, encode_target, infer_task, with_target_stats

__all__ = ["DataError", "Dataset", "Loaded", "load_dataset", "rows", "take"]


def rows(x: Any) -> int:
    """Examples in ``x``: an array, or a table's dict of equally long columns."""
    if isinstance(x, dict):
        return len(next(iter(x.values()))) if x else 0
    return len(x)


def take(x: Any, index: np.ndarray) -> Any:
    """The rows ``index`` of an array or of a table's columns."""
    if isinstance(x, dict):
        return {k: v[index] for k, v in x.items()}
    return x[index]


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train / validation / test splits in memory, with their ``DataSpec``.

    ``x_*`` are arrays (features: 2-D, images: 4-D) or, for tables, dicts of column
    arrays keyed by the model's input names; ``y_*`` are encoded targets (class indices,
    0/1, 0/1 columns or float32). The test split is read once, by the final model.
    """

    name: str
    x_train: Any
    y_train: np.ndarray
    x_val: Any
    y_val: np.ndarray
    x_test: Any
    y_test: np.ndarray
    inputs: InputSpec
    task: Task
    notes: tuple[str, ...] = ()

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    @property
    def spec(self) -> DataSpec:
        return DataSpec(self.inputs, self.task, self.name, self.sizes())

    def fit_args(self, batch_size: int, seed: int) -> dict[str, Any]:
        """``model.fit``'s data arguments (Keras shuffles the arrays each epoch)."""
        return {
            "x": self.x_train,
            "y": self.y_train,
            "batch_size": batch_size,
            "validation_data": (self.x_val, self.y_val),
        }

    def refit_args(self, batch_size: int, seed: int) -> dict[str, Any]:
        """``model.fit``'s data arguments for a refit: training and validation rows as
        one training set (Keras shuffles them each epoch), nothing to validate on."""
        return {
            "x": _concat([self.x_train, self.x_val]),
            "y": np.concatenate([self.y_train, self.y_val]),
            "batch_size": batch_size,
        }

    def digest(self, split: str) -> str:
        """A digest of split ``split``'s rows and targets (``train``, ``val``, ``test``),
        hashed once: the parent run's dataset inputs and ``@champion`` both ask."""
        return self._digests[split]

    @cached_property
    def _digests(self) -> dict[str, str]:
        return {
            s: digest(getattr(self, f"x_{s}"), getattr(self, f"y_{s}"))
            for s in ("train", "val", "test")
        }

    def head(self, n: int) -> tuple[Any, np.ndarray]:
        """The first ``n`` validation rows (an input example for the logged model)."""
        index = np.arange(min(n, len(self.y_val)))
        return take(self.x_val, index), self.y_val[index]

    def predict(self, model: Any, which: str) -> tuple[np.ndarray, np.ndarray]:
        """(model outputs, targets) on the ``val`` or ``test`` split, row for row: what
        the final phase scores (the test split only once, for the registered model)."""
        from trainables.evaluate import predict

        x, y = (self.x_val, self.y_val) if which == "val" else (self.x_test, self.y_test)
        return predict(model, x), y


@dataclass(eq=False)
class Loaded:
    """What a loader read, before the shared steps of ``load_dataset``.

    Attributes:
        x / y: the rows to split (raw targets: labels or numbers).
        keys: one 64-bit split key per row (seeded random, or a seeded hash of the row).
        test / val: (x, y) rows the user gave as the test or validation set, if any.
        inputs: the input spec so far (kind, shape, scale; ``table`` columns without
            statistics); ``finish`` adds the training-split statistics.
        test_size / val_size: the config keys' values (count or fraction).
        target_name: for messages ("target 'label' has ...").
    """

    name: str
    x: Any
    y: np.ndarray
    keys: np.ndarray
    inputs: InputSpec
    test_size: Any = None
    val_size: Any = None
    test: tuple[Any, np.ndarray] | None = None
    val: tuple[Any, np.ndarray] | None = None
    target_name: str = "label"
    label_names: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


def _split(loaded: Loaded, stratify: bool) -> tuple[tuple[Any, np.ndarray], ...]:
    """(train, val, test) parts: the user's own test/validation rows, else seeded,
    stratified carve-outs of ``loaded.x`` (validation never overlaps test)."""
    n = len(loaded.y)  # fractions are of all these rows
    n_test = 0 if loaded.test else resolve_size(loaded.test_size, n, "dataset.test_size")
    n_val = 0 if loaded.val else resolve_size(loaded.val_size, n, "dataset.validation_size")
    if n - n_test - n_val < 1:
        raise SplitError(
            f"dataset.validation_size={loaded.val_size}: leaves no training rows ({n} rows)"
        )
    strata = loaded.y if stratify else None
    train, val, test = split_rows(loaded.keys, strata, n_test, n_val)
    part = lambda i: (take(loaded.x, i), loaded.y[i])  # noqa: E731
    return part(train), loaded.val or part(val), loaded.test or part(test)


def _select_classes(
    parts: tuple[tuple[Any, np.ndarray], ...], classes: list[Any]
) -> tuple[tuple[Any, np.ndarray], ...]:
    """Keep only the rows of ``classes`` in every split (order kept for the encoding)."""
    present = set(np.unique(np.concatenate([y for _, y in parts])).tolist())
    if (
        not classes
        or len(set(map(str, classes))) != len(classes)
        or any(isinstance(c, bool) or c not in present for c in classes)
    ):
        shown = sorted(map(str, present))
        raise DataError(
            f"dataset.classes={classes}: must list distinct labels of the data "
            f"({', '.join(shown[:20])}{', ...' if len(shown) > 20 else ''})"
        )
    out = []
    for x, y in parts:
        keep = np.flatnonzero(np.isin(y, classes))
        out.append((take(x, keep), y[keep]))
    return tuple(out)


def _cap_per_class(x: Any, y: np.ndarray, cap: Any, seed: int) -> tuple[Any, np.ndarray]:
    """At most ``cap`` training rows per class (seeded choice); validation and test stay
    whole so scores remain comparable (the transfer exercise: 100 images per digit)."""
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise DataError(f"dataset.max_per_class={cap!r}: must be an integer >= 1")
    rng = np.random.default_rng(seed)
    keep = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(y == c))[:cap] for c in np.unique(y)])
    )
    return take(x, keep), y[keep]


def _encode(kind: str, parts, order: list[Any] | None, labels: tuple[str, ...]):  # noqa: ANN001
    """The task and the encoded targets of each split, classes in ``order`` if given."""
    y_all = np.concatenate([y for _, y in parts])
    if order is not None and kind in ("multiclass", "binary"):
        lookup = {v: i for i, v in enumerate(order)}
        task = Task(kind, tuple(str(v) for v in order))
        dtype = np.float32 if kind == "binary" else np.int64
        encoded = [np.array([lookup[v] for v in y.tolist()], dtype=dtype) for _, y in parts]
        return task, encoded
    task, flat = encode_target(kind, y_all, labels)
    bounds = np.cumsum([len(y) for _, y in parts])[:-1]
    return task, np.split(flat, bounds)


def _options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


def _split_seed(options: dict[str, Any], seed: int) -> int:
    split_seed = options.pop("split_seed", None)
    if split_seed is None:
        return seed
    if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
        raise DataError(f"dataset.split_seed={split_seed!r}: allowed is an integer >= 0")
    return split_seed


Loader = Callable[[dict[str, Any], int], Loaded]


def _loaders() -> dict[str, Loader]:
    from trainables import arrays, images, tables

    return {
        "fashion_mnist": builtin.load_fashion_mnist,
        "digits": builtin.load_digits,
        "table": tables.load_table,
        "arrays": arrays.load_arrays,
        "images": images.load_images,
    }


def load_dataset(
    options: dict[str, Any], seed: int, task: str = "auto", loaded: Loaded | None = None
) -> Dataset:
    """Load the dataset the ``dataset`` config group describes (or finish ``loaded``,
    data given in memory through the Python API).

    Options every dataset takes: ``classes`` (keep these labels, encoded in the order
    given), ``max_per_class`` (cap the training rows per class) and ``split_seed`` (seeds
    the split and the cap instead of the sweep's ``seed``, so sweeps with different
    seeds can be compared on the same split).

    Raises:
        DataError: naming the config key or file, for anything wrong with the data.
    """
    options = _options(options)
    seed = _split_seed(options, seed)
    name = options.pop("name", None)
    classes = options.pop("classes", None)
    cap = options.pop("max_per_class", None)
    options.pop("streaming", None)  # decided by the driver, not a loader option
    if loaded is None:
        loaders = _loaders()
        if name not in loaders:
            raise DataError(f"dataset.name={name}: allowed are {', '.join(loaders)}")
        loaded = loaders[name](options, seed)
    return finish(loaded, task, seed, classes, cap)


def finish(
    loaded: Loaded, task: str, seed: int, classes: list[Any] | None = None, cap: Any = None
) -> Dataset:
    """The shared steps after loading: split, classes, task, encoding, statistics."""
    if classes is None:  # a class filter means labels; otherwise ask the target
        y_all = loaded.y if loaded.test is None else np.concatenate([loaded.y, loaded.test[1]])
        stratify = infer_task(y_all, task, loaded.target_name)[0] in ("multiclass", "binary")
    else:
        stratify = True
    parts = _split(loaded, stratify)
    if classes is not None:
        parts = _select_classes(parts, list(classes))
    y_all = np.concatenate([y for _, y in parts])
    kind, why = infer_task(y_all, task, loaded.target_name)
    if cap is not None:
        parts = (_cap_per_class(*parts[0], cap, seed), *parts[1:])
    task_value, (y_tr, y_val, y_te) = _encode(kind, parts, classes, loaded.label_names)
    task_value = with_target_stats(task_value, y_tr)
    (x_tr, _), (x_val, _), (x_te, _) = parts
    inputs = _with_stats(loaded.inputs, x_tr)
    notes = (*loaded.notes, f"task={task}: {task_value.kind} ({why})")
    return Dataset(loaded.name, x_tr, y_tr, x_val, y_val, x_te, y_te, inputs, task_value, notes)


def _with_stats(inputs: InputSpec, x_train: Any) -> InputSpec:
    """The input spec with the training split's statistics (computed once, here)."""
    if inputs.kind == "table":
        from trainables.tables import column_stats

        return replace(inputs, columns=column_stats(inputs.columns, x_train))
    from trainables.spec import feature_stats

    scale, mean, std = feature_stats(x_train)
    return replace(inputs, scale=inputs.scale or scale, mean=mean, std=std)


def from_arrays(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    *,
    kind: str = "features",
    scale: float | None = None,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    test_size: Any = None,
    val_size: Any = None,
    target_name: str = "y",
) -> Loaded:
    """A ``Loaded`` for arrays (built-in datasets, ``.npz`` files, the Python API)."""
    shape = tuple(int(d) for d in x.shape[1:])
    return Loaded(
        name,
        x,
        y,
        random_keys(len(y), seed),
        InputSpec(kind, shape=shape, scale=scale or 0.0, pixels=scale is not None),
        test_size=test_size,
        val_size=val_size,
        test=test,
        val=val,
        target_name=target_name,
    )
