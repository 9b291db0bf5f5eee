"""The model builder builds what the params say: layers, units, activations, optimizer."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from trainables.model import build_model


def hidden_dense(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if layer.name.startswith("hidden_")]


def test_keras_tuner_params_build_the_seeds_model():
    params = {"n_hidden": 3, "n_neurons": 70, "learning_rate": 4.1e-4, "optimizer": "adam",
              "activation": "relu"}  # fmt: skip
    model = build_model(params, input_dim=784, n_classes=10, input_scale=255.0)
    dense = hidden_dense(model)
    assert [d.units for d in dense] == [70, 70, 70]
    assert all(isinstance(d.kernel_initializer, keras.initializers.GlorotUniform) for d in dense)
    acts = [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)]
    assert len(acts) == 3 and all(a.activation.__name__ == "relu" for a in acts)
    out = model.layers[-1]
    assert out.units == 10 and out.activation.__name__ == "softmax"
    assert isinstance(model.layers[0], keras.layers.Rescaling)
    assert model.layers[0].scale == pytest.approx(1 / 255)
    opt = model.optimizer
    assert isinstance(opt, keras.optimizers.Adam)
    assert float(opt.learning_rate) == pytest.approx(4.1e-4)
    assert opt.epsilon == pytest.approx(1e-8)  # the text's value, not Keras' 1e-7
    assert model.loss == "sparse_categorical_crossentropy"
    assert model.count_params() == 784 * 70 + 70 + 2 * (70 * 70 + 70) + 70 * 10 + 10


def test_zero_hidden_layers_is_softmax_regression():
    model = build_model({"n_hidden": 0, "n_neurons": 50}, input_dim=64, n_classes=10)
    assert hidden_dense(model) == []
    assert model.count_params() == 64 * 10 + 10


def test_per_layer_units_initializer_activation_dropout_l2():
    params = {"n_hidden": 3, "n_neurons_0": 300, "n_neurons_1": 200, "n_neurons_2": 100,
              "activation": "leaky_relu", "initializer": "he_normal", "dropout": 0.25,
              "l2": 0.01}  # fmt: skip
    model = build_model(params, input_dim=64, n_classes=10)
    dense = hidden_dense(model)
    assert [d.units for d in dense] == [300, 200, 100]
    assert all(isinstance(d.kernel_initializer, keras.initializers.HeNormal) for d in dense)
    assert all(d.kernel_regularizer.l2 == pytest.approx(0.01) for d in dense)
    leaky = [layer for layer in model.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert len(leaky) == 3 and leaky[0].negative_slope == pytest.approx(0.2)
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(drops) == 3 and all(d.rate == pytest.approx(0.25) for d in drops)
    # order: Dense -> activation -> Dropout for each layer
    names = [type(layer).__name__ for layer in model.layers]
    assert names[1:4] == ["Dense", "LeakyReLU", "Dropout"]


@pytest.mark.parametrize(
    ("params", "cls", "attrs"),
    [
        ({"optimizer": "sgd", "momentum": 0.9, "nesterov": True}, keras.optimizers.SGD,
         {"momentum": 0.9, "nesterov": True}),
        ({"optimizer": "sgd"}, keras.optimizers.SGD, {"momentum": 0.0, "nesterov": False}),
        ({"optimizer": "rmsprop"}, keras.optimizers.RMSprop, {"rho": 0.9}),
        ({"optimizer": "nadam"}, keras.optimizers.Nadam, {"epsilon": 1e-8}),
        ({"optimizer": "adamw", "weight_decay": 0.01}, keras.optimizers.AdamW,
         {"weight_decay": 0.01}),
    ],  # fmt: skip
)
def test_optimizer_and_its_params(params, cls, attrs):
    model = build_model({"n_hidden": 1, "learning_rate": 0.02, **params}, 8, 3)
    assert isinstance(model.optimizer, cls)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)
    for name, value in attrs.items():
        assert getattr(model.optimizer, name) == pytest.approx(value)


def test_same_seed_same_weights():
    a = build_model({"n_hidden": 2, "n_neurons": 16}, 8, 3, seed=5)
    b = build_model({"n_hidden": 2, "n_neurons": 16}, 8, 3, seed=5)
    c = build_model({"n_hidden": 2, "n_neurons": 16}, 8, 3, seed=6)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_configure_threads_sets_tensorflow_threads():
    """In a fresh process (TF threads are fixed once TF starts executing)."""
    import subprocess
    import sys

    code = (
        "import tensorflow as tf; from trainables.train import configure_threads; "
        "a = configure_threads(1); tf.constant(1.0) + 1; print(a, configure_threads(2))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()  # fmt: skip
    # once TF runs, a second call (a reused worker) keeps the first setting
    assert out == ["1", "1"]
