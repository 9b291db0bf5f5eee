"""Tasks inferred from targets, checked when asked for, encoded; objectives checked."""

from __future__ import annotations

import numpy as np
import pytest

from trainables.task import Objective, Task, TaskError, encode_target, infer_task


@pytest.mark.parametrize(
    ("y", "kind"),
    [
        (np.array(["yes", "no", "yes"]), "binary"),
        (np.array([0.0, 1.0, 1.0, 0.0]), "binary"),
        (np.array([True, False, True]), "binary"),
        (np.array([0, 1, 2, 3, 2]), "multiclass"),
        (np.array(["cat", "dog", "emu"]), "multiclass"),
        (np.array([1.5, 2.25, 3.0]), "regression"),
        (np.arange(100.0), "regression"),  # integers, but too many to be classes
        (np.array([[0, 1], [1, 1], [0, 0]]), "multilabel"),
    ],
)
def test_auto_infers_the_task_and_says_why(y, kind):
    got, why = infer_task(y, "auto", "label")
    assert got == kind
    assert "label" in why or "columns" in why


def test_a_requested_task_must_fit_the_target():
    with pytest.raises(TaskError, match="task=regression: target 'label' is not numeric"):
        infer_task(np.array(["a", "b", "c"]), "regression", "label")
    with pytest.raises(TaskError, match="task=binary: target 'y' has 3 distinct values"):
        infer_task(np.array([0, 1, 2]), "binary")
    with pytest.raises(TaskError, match="task=multilabel"):
        infer_task(np.array([0, 1, 2]), "multilabel")
    with pytest.raises(TaskError, match="task=multiclass: target 'y' has only one value"):
        infer_task(np.array([3, 3, 3]), "multiclass")
    with pytest.raises(TaskError, match="task=ordinal: allowed are auto"):
        infer_task(np.array([0, 1]), "ordinal")
    assert infer_task(np.arange(100.0), "multiclass")[0] == "multiclass"  # user's call


def test_encoding_keeps_the_labels():
    task, y = encode_target("binary", np.array(["yes", "no", "yes"]))
    assert task.classes == ("no", "yes") and y.tolist() == [1.0, 0.0, 1.0]
    task, y = encode_target("multiclass", np.array([10.0, 30.0, 20.0]))
    assert task.classes == ("10", "20", "30") and y.tolist() == [0, 2, 1]
    task, y = encode_target("multilabel", np.array([[0, 1], [1, 0]]), ("a", "b"))
    assert task.classes == ("a", "b") and task.n_outputs == 2 and y.dtype == np.float32


def test_objectives_follow_the_task():
    regression = Task("regression")
    assert Objective.for_task(regression) == Objective("val_rmse", "min")
    assert Objective.for_task(Task("binary", ("a", "b"))) == Objective("val_auc", "max")
    assert Objective.for_task(Task("multiclass", ("a", "b", "c"))).metric == "val_accuracy"
    assert Objective.for_task(regression, "val_mae", "min") == Objective("val_mae", "min")
    assert Objective.for_task(regression, "val_loss") == Objective("val_loss", "min")
    with pytest.raises(TaskError, match="objective.metric=val_auc: task regression reports"):
        Objective.for_task(regression, "val_auc")
    with pytest.raises(TaskError, match="objective.mode=max: val_rmse improves when it goes down"):
        Objective.for_task(regression, "val_rmse", "max")
    low = Objective("val_rmse", "min")
    assert low.better(1.0, 2.0) and not low.better(2.0, 1.0)
    assert low.best_of([3.0, float("nan"), 1.5]) == 1.5
    assert sorted([3.0, float("nan"), 1.0], key=low.sort_key)[:2] == [1.0, 3.0]
