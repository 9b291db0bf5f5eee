"""What is being learned (the task) and what the search optimizes (the objective).

The task decides the output layer, the loss and the metrics; the objective (a validation
metric and its direction) decides the searcher's and the scheduler's target, early
stopping, checkpoint ranking, the ensemble, the report and the registered model. Both
are plain values, decided once in the driver (``infer_task``, ``Objective.for_task``) and
passed to every other place as they are. No Keras import: validating them is instant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnn_sweep.errors import DataError

TASKS = ("multiclass", "binary", "regression", "multilabel")

# The metrics Keras reports for each task (training, and ``val_`` + name on validation).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "multiclass": ("loss", "accuracy"),
    "binary": ("loss", "accuracy", "auc"),
    "multilabel": ("loss", "accuracy", "auc"),
    "regression": ("loss", "rmse", "mae"),
}
# Which way each metric improves.
DIRECTIONS = {"loss": "min", "accuracy": "max", "auc": "max", "rmse": "min", "mae": "min"}
# The objective a task gets unless the config names another.
NATURAL_OBJECTIVE = {
    "multiclass": "val_accuracy",
    "binary": "val_auc",
    "multilabel": "val_auc",
    "regression": "val_rmse",
}
# An integer target with more distinct values than this is taken for a quantity
# (regression), not class ids, by task=auto (scikit-learn's digits have 10, a diabetes
# score has 214).
MAX_AUTO_CLASSES = 20


class TaskError(DataError):
    """The target does not fit the requested task (the message names both)."""


@dataclass(frozen=True)
class Task:
    """The learning problem.

    Attributes:
        kind: one of ``TASKS``.
        classes: the original label of each class index (multiclass; binary: negative,
            positive), or each label column's name (multilabel); empty for regression.
        target_mean / target_std: regression only: the training target's mean and std;
            the model predicts in the target's units, its loss is computed on the
            standardized target so learning rates mean the same whatever the units.
    """

    kind: str
    classes: tuple[str, ...] = ()
    target_mean: float = 0.0
    target_std: float = 1.0

    @property
    def n_outputs(self) -> int:
        """Units of the output layer."""
        return len(self.classes) if self.kind in ("multiclass", "multilabel") else 1

    @property
    def metrics(self) -> tuple[str, ...]:
        return TASK_METRICS[self.kind]

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"

    def describe(self) -> str:
        if self.kind == "regression":
            return f"regression (target mean {self.target_mean:.4g}, std {self.target_std:.4g})"
        shown = ", ".join(self.classes[:6]) + (", ..." if len(self.classes) > 6 else "")
        noun = "labels" if self.kind == "multilabel" else "classes"
        return f"{self.kind} ({len(self.classes)} {noun}: {shown})"


@dataclass(frozen=True)
class Objective:
    """The validation metric a sweep optimizes and its direction (``min`` or ``max``)."""

    metric: str
    mode: str

    @classmethod
    def for_task(cls, task: Task, metric: str | None = None, mode: str | None = None) -> Objective:
        """The config's ``objective.metric``/``objective.mode``, checked against what the
        task reports; the task's natural objective when ``metric`` is null.

        Raises:
            TaskError: naming the allowed metrics, or the direction the metric improves in.
        """
        allowed = [f"val_{m}" for m in task.metrics]
        chosen = NATURAL_OBJECTIVE[task.kind] if metric is None else metric
        if chosen not in allowed:
            raise TaskError(
                f"objective.metric={chosen}: task {task.kind} reports {', '.join(allowed)}"
            )
        direction = DIRECTIONS[chosen[len("val_") :]]
        if mode is not None and mode != direction:
            raise TaskError(
                f"objective.mode={mode}: {chosen} improves when it goes "
                f"{'down' if direction == 'min' else 'up'}; allowed is {direction}"
            )
        return cls(chosen, direction)

    @property
    def name(self) -> str:
        """The metric without its ``val_`` prefix (``rmse``), as Keras names it."""
        return self.metric.removeprefix("val_")

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` beats ``b``."""
        return a < b if self.mode == "min" else a > b

    @property
    def worst(self) -> float:
        return float("inf") if self.mode == "min" else float("-inf")

    def best_of(self, values: list[float]) -> float:
        """The best finite value, or NaN when there is none."""
        finite = [v for v in values if np.isfinite(v)]
        if not finite:
            return float("nan")
        return min(finite) if self.mode == "min" else max(finite)

    def sort_key(self, value: float) -> float:
        """Ascending sort puts the best first; NaN sorts last."""
        if not np.isfinite(value):
            return float("inf")
        return value if self.mode == "min" else -value


def _is_numeric(y: np.ndarray) -> bool:
    return y.dtype.kind in "iufb"


def _integral(y: np.ndarray) -> bool:
    return y.dtype.kind in "iub" or bool(np.all(np.mod(y, 1) == 0))


def _auto_kind(y: np.ndarray, name: str) -> tuple[str, str]:
    """(kind, why) for ``task=auto``."""
    if y.ndim == 2:
        return "multilabel", f"{y.shape[1]} target columns of 0/1"
    distinct = len(np.unique(y))
    if distinct == 2:
        return "binary", f"target {name!r} has 2 distinct values"
    if _is_numeric(y) and not _integral(y):
        return "regression", f"target {name!r} has non-integer numbers"
    if _is_numeric(y) and distinct > MAX_AUTO_CLASSES:
        return "regression", (
            f"target {name!r} has {distinct} distinct numbers (> {MAX_AUTO_CLASSES} for classes)"
        )
    return "multiclass", f"target {name!r} has {distinct} distinct values"


def _check_kind(kind: str, y: np.ndarray, name: str) -> None:
    if kind == "multilabel":
        if y.ndim != 2 or not np.isin(y, (0, 1)).all():
            raise TaskError(
                f"task=multilabel: target {name!r} must be several columns of 0/1 indicators"
            )
        return
    if y.ndim != 1:
        raise TaskError(
            f"task={kind}: target {name!r} has {y.shape[1]} columns; only task=multilabel "
            "takes several (0/1 indicators)"
        )
    distinct = len(np.unique(y))
    if kind == "regression" and not _is_numeric(y):
        raise TaskError(
            f"task=regression: target {name!r} is not numeric (e.g. {y[0]!r}); "
            "allowed are multiclass or binary for labels"
        )
    if kind == "binary" and distinct != 2:
        raise TaskError(
            f"task=binary: target {name!r} has {distinct} distinct values; binary needs 2"
        )
    if kind == "multiclass" and distinct < 2:
        raise TaskError(f"task=multiclass: target {name!r} has only one value")


def infer_task(y: np.ndarray, requested: str, name: str = "y") -> tuple[str, str]:
    """The task kind for target ``y`` (``requested``, or inferred for ``auto``) and a
    short reason a user can check ("target 'label' has 2 distinct values").

    Raises:
        TaskError: ``requested`` is unknown or does not fit ``y``.
    """
    if requested not in ("auto", *TASKS):
        raise TaskError(f"task={requested}: allowed are auto, {', '.join(TASKS)}")
    if len(y) == 0:
        raise TaskError(f"target {name!r}: no rows")
    if requested == "auto":
        kind, why = _auto_kind(y, name)
    else:
        kind, why = requested, "as configured"
    _check_kind(kind, y, name)
    return kind, why


def encode_target(
    kind: str, y: np.ndarray, labels: tuple[str, ...] = ()
) -> tuple[Task, np.ndarray]:
    """The task with its classes, and ``y`` as the model trains on it: class indices
    (multiclass), 0/1 (binary: the second of the sorted labels is positive), 0/1
    columns (multilabel, named by ``labels``) or float32 (regression; the target stats
    are set later from the training split, see ``with_target_stats``)."""
    if kind == "regression":
        return Task(kind), y.astype(np.float32)
    if kind == "multilabel":
        names = labels or tuple(str(i) for i in range(y.shape[1]))
        return Task(kind, tuple(names)), y.astype(np.float32)
    values, index = np.unique(y, return_inverse=True)
    classes = tuple(label_name(v) for v in values)
    if kind == "binary":
        return Task(kind, classes), index.astype(np.float32)
    return Task(kind, classes), index.astype(np.int64)


def label_name(value: object) -> str:
    """A label as a class name: whole floats (a CSV's integer labels) as integers."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def with_target_stats(task: Task, y_train: np.ndarray) -> Task:
    """Regression: the training target's mean and std (std 1 for a constant target)."""
    if task.kind != "regression":
        return task
    std = float(np.std(y_train))
    return Task(task.kind, target_mean=float(np.mean(y_train)), target_std=std if std > 0 else 1.0)
