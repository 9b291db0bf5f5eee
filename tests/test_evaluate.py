"""Scoring: each task's metrics agree with scikit-learn's; MC dropout samples with
dropout on and batch norm frozen, for any model (cloned with MCDropout layers)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_absolute_error, roc_auc_score

from trainables.evaluate import (
    has_dropout,
    mc_model,
    mc_predict,
    mean_entropy,
    metrics_of,
    predict,
    score,
)
from trainables.model import BuildContext, build_model
from trainables.spec import DataSpec, InputSpec
from trainables.task import Task


def spec(task: Task, d: int = 6) -> DataSpec:
    return DataSpec(InputSpec("features", (d,), 1.0, mean=np.zeros(d), std=np.ones(d)), task)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")
    return x, y


MULTICLASS = Task("multiclass", ("a", "b", "c"))


class Rows:
    """One split in memory, as ``score`` reads data: outputs and targets, row for row."""

    task = MULTICLASS

    def __init__(self, x, y):
        self.x, self.y = x, y

    def predict(self, model, which):
        return predict(model, self.x), self.y


def model_for(params, x, y, epochs=15, task=MULTICLASS):
    keras.utils.set_random_seed(0)
    model = build_model(params, BuildContext(spec(task)))
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.mark.slow
def test_mc_dropout_scores_beside_the_plain_ones(data):
    x, y = data
    model = model_for(
        {
            "n_hidden": 2,
            "n_neurons": 32,
            "dropout": 0.3,
            "batch_norm": "after",
            "input_norm": "none",
            "learning_rate": 0.01,
        },
        x,
        y,
    )
    assert has_dropout(model)
    sampler = mc_model(model)
    bn = next(
        layer for layer in sampler.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    moving = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    a, b = sampler.predict(x[:50], verbose=0), sampler.predict(x[:50], verbose=0)
    assert not np.allclose(a, b)  # dropout really is on
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), moving)  # BN frozen
    np.testing.assert_allclose(  # the plain model is untouched: deterministic
        model.predict(x[:5], verbose=0), model.predict(x[:5], verbose=0)
    )
    scores = score(model, Rows(x, y), "test", mc_samples=30)
    assert set(scores) == {"accuracy", "loss", "entropy", "mc_accuracy", "mc_loss", "mc_entropy"}
    assert scores["mc_accuracy"] > 0.6 and scores["accuracy"] > 0.6
    assert scores["mc_entropy"] > scores["entropy"]  # averaging passes: less confident
    probs = mc_predict(model, x[:10], samples=5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow  # trains
def test_without_mc_samples_only_plain_scores(data):
    x, y = data
    model = model_for({"n_hidden": 1, "input_norm": "none"}, x, y, epochs=2)
    assert set(score(model, Rows(x, y), "test")) == {"accuracy", "loss", "entropy"}
    assert not has_dropout(model)


def test_entropy_bounds():
    assert mean_entropy(np.array([[1.0, 0.0, 0.0]])) == pytest.approx(0.0, abs=1e-9)
    assert mean_entropy(np.full((2, 4), 0.25)) == pytest.approx(np.log(4))


def test_metrics_of_each_task_match_scikit_learn():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, size=(50, 1))
    y = (rng.uniform(size=50) < p[:, 0]).astype(np.float32)
    m = metrics_of(Task("binary", ("no", "yes")), p, y)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p[:, 0]))
    assert m["loss"] == pytest.approx(log_loss(y, p[:, 0]), rel=1e-6)
    assert m["accuracy"] == pytest.approx(np.mean((p[:, 0] >= 0.5) == y))
    labels = (rng.uniform(size=(50, 3)) < 0.5).astype(np.float32)
    probs = rng.uniform(size=(50, 3))
    multi = metrics_of(Task("multilabel", ("a", "b", "c")), probs, labels)
    assert multi["auc"] == pytest.approx(roc_auc_score(labels, probs, average="macro"))
    target = rng.normal(10, 3, size=50)
    pred = target + rng.normal(0, 1, size=50)
    reg = metrics_of(Task("regression", target_mean=10, target_std=3), pred[:, None], target)
    assert reg["rmse"] == pytest.approx(np.sqrt(np.mean((pred - target) ** 2)))
    assert reg["mae"] == pytest.approx(mean_absolute_error(target, pred))
    assert reg["loss"] == pytest.approx(np.mean(((pred - target) / 3) ** 2))
    one_class = metrics_of(Task("binary", ("no", "yes")), p, np.ones(50))
    assert np.isnan(one_class["auc"])  # undefined, not an error
