"""MC dropout: stochastic passes with dropout on, BN frozen; accuracy and entropy."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from trainables.evaluate import has_dropout, mc_predict, mean_entropy, score, stochastic_forward
from trainables.model import BuildContext, build_model


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")
    return x, y


def model_for(params, x, y, epochs=15):
    keras.utils.set_random_seed(0)
    model = build_model(params, BuildContext(6, 3, input_scale=1.0))
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


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
    bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    moving = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    a = keras.ops.convert_to_numpy(stochastic_forward(model, x[:50]))
    b = keras.ops.convert_to_numpy(stochastic_forward(model, x[:50]))
    assert not np.allclose(a, b)  # dropout really is on
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), moving)  # BN frozen
    scores = score(model, x, y, mc_samples=30)
    assert set(scores) == {"accuracy", "loss", "entropy", "mc_accuracy", "mc_entropy"}
    assert scores["mc_accuracy"] > 0.6 and scores["accuracy"] > 0.6
    assert scores["mc_entropy"] > scores["entropy"]  # averaging passes: less confident
    probs = mc_predict(model, x[:10], samples=5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_without_mc_samples_only_plain_scores(data):
    x, y = data
    model = model_for({"n_hidden": 1, "input_norm": "none"}, x, y, epochs=2)
    assert set(score(model, x, y)) == {"accuracy", "loss", "entropy"}
    assert not has_dropout(model)


def test_entropy_bounds():
    assert mean_entropy(np.array([[1.0, 0.0, 0.0]])) == pytest.approx(0.0, abs=1e-9)
    assert mean_entropy(np.full((2, 4), 0.25)) == pytest.approx(np.log(4))
