"""Every option builds what it says: layers and order, initializers, regularizers,
constraints, clipping, optimizers and their params, schedules, selu rules."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from trainables.model import BuildContext, build_model, hidden_units, make_optimizer
from trainables.params import PARAMS, resolve
from trainables.schedules import OneCycle, OneCycleMomentum, build_schedule
from trainables.spec import DataSpec, InputSpec
from trainables.task import Task
from trainables.train import training_callbacks

MEAN = np.linspace(0, 10, 8).astype("float32")
STD = np.linspace(1, 2, 8).astype("float32")


def data_spec(d: int = 8, classes: int = 3, scale: float = 16.0, pixels: bool = True) -> DataSpec:
    inputs = InputSpec("features", (d,), scale, pixels=pixels, mean=MEAN[:d], std=STD[:d])
    return DataSpec(inputs, Task("multiclass", tuple(str(i) for i in range(classes))))


def ctx(**kw) -> BuildContext:
    base = {"spec": data_spec(), "steps_per_epoch": 10, "epochs": 10}
    return BuildContext(**{**base, **kw})


def build(**params) -> keras.Sequential:
    return build_model(params, ctx())


def hidden_dense(model: keras.Model) -> list[keras.layers.Dense]:
    return [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense) and layer.name.startswith("hidden_")
    ]


def body(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers without its input layer."""
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def kinds(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in body(model)]


def lr_at(schedule, step: int) -> float:
    value = schedule(step) if callable(schedule) else schedule
    return float(keras.ops.convert_to_numpy(value))


# -- architecture -----------------------------------------------------------------------
def test_keras_tuner_params_build_the_seeds_model():
    params = {
        "n_hidden": 3,
        "n_neurons": 70,
        "learning_rate": 4.1e-4,
        "optimizer": "adam",
        "activation": "relu",
    }
    model = build_model(params, BuildContext(data_spec(784, 10, 255.0)))
    dense = hidden_dense(model)
    assert [d.units for d in dense] == [70, 70, 70]
    assert all(isinstance(d.kernel_initializer, keras.initializers.GlorotUniform) for d in dense)
    assert kinds(model) == ["Rescaling"] + ["Dense", "Activation"] * 3 + ["Dense"]
    assert body(model)[0].scale == pytest.approx(1 / 255)
    out = body(model)[-1]
    assert out.units == 10 and out.activation.__name__ == "softmax"
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(4.1e-4)
    assert model.loss == "sparse_categorical_crossentropy"
    assert model.count_params() == 784 * 70 + 70 + 2 * (70 * 70 + 70) + 70 * 10 + 10


def test_zero_hidden_layers_is_softmax_regression():
    model = build(n_hidden=0, n_neurons=50)
    assert hidden_dense(model) == []
    assert model.count_params() == 8 * 3 + 3


def test_per_layer_units_and_layer_shapes():
    per_layer = build(n_hidden=3, n_neurons=10, n_neurons_0=30, n_neurons_1=20, n_neurons_2=5)
    assert [d.units for d in hidden_dense(per_layer)] == [30, 20, 5]
    pyramid = build(n_hidden=3, n_neurons=300, layer_shape="pyramid")
    assert [d.units for d in hidden_dense(pyramid)] == [300, 200, 100]
    bigger = build(n_hidden=3, n_neurons=50, layer_shape="first_bigger", first_layer_factor=3)
    assert [d.units for d in hidden_dense(bigger)] == [150, 50, 50]
    assert hidden_units(resolve({"n_hidden": 2, "n_neurons": 7})) == [7, 7]


def test_input_normalization_options():
    assert kinds(build(n_hidden=1))[0] == "Rescaling"
    model = build(n_hidden=1, input_norm="standardize")
    norm = body(model)[0]
    assert isinstance(norm, keras.layers.Normalization)
    np.testing.assert_allclose(np.ravel(norm.mean), MEAN)
    np.testing.assert_allclose(np.ravel(norm.variance), STD**2, rtol=1e-6)
    x = (MEAN + 2 * STD)[None, :]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(norm(x)), 2.0, rtol=1e-4)
    assert kinds(build(n_hidden=1, input_norm="none"))[0] == "Dense"


# -- initializers -----------------------------------------------------------------------
NAMED_INITIALIZERS = [
    ("glorot_uniform", keras.initializers.GlorotUniform),
    ("glorot_normal", keras.initializers.GlorotNormal),
    ("he_uniform", keras.initializers.HeUniform),
    ("he_normal", keras.initializers.HeNormal),
    ("lecun_uniform", keras.initializers.LecunUniform),
    ("lecun_normal", keras.initializers.LecunNormal),
]


@pytest.mark.parametrize(("name", "cls"), NAMED_INITIALIZERS)
def test_named_initializers(name, cls):
    init = hidden_dense(build(n_hidden=2, initializer=name))[0].kernel_initializer
    assert type(init) is cls


@pytest.mark.parametrize("mode", ["fan_in", "fan_avg", "fan_out"])
def test_variance_scaling_mode_scale_distribution(mode):
    model = build(
        n_hidden=1,
        initializer="variance_scaling",
        init_mode=mode,
        init_scale=3.0,
        init_distribution="truncated_normal",
    )
    init = hidden_dense(model)[0].kernel_initializer
    assert type(init) is keras.initializers.VarianceScaling
    assert (init.mode, init.scale, init.distribution) == (mode, 3.0, "truncated_normal")


def test_he_uniform_limit_matches_table_11_1():
    kernel = keras.ops.convert_to_numpy(
        hidden_dense(build(n_hidden=1, n_neurons=4000, initializer="he_uniform"))[0].kernel
    )
    assert np.abs(kernel).max() <= math.sqrt(3 * 2 / 8) + 1e-6  # r = sqrt(3 sigma^2)


# -- activations ------------------------------------------------------------------------
PLAIN_ACTIVATIONS = ["relu", "selu", "gelu", "swish", "tanh", "sigmoid"]


@pytest.mark.parametrize("name", PLAIN_ACTIVATIONS)
def test_plain_activations(name):
    acts = [
        layer
        for layer in build(n_hidden=2, activation=name).layers
        if isinstance(layer, keras.layers.Activation)
    ]
    assert len(acts) == 2 and all(a.activation is keras.activations.get(name) for a in acts)


def test_parametric_activations():
    leaky = body(build(n_hidden=1, activation="leaky_relu"))[2]
    assert isinstance(leaky, keras.layers.LeakyReLU)
    assert leaky.negative_slope == pytest.approx(0.01)  # the text's value (Keras: 0.3)
    assert body(build(n_hidden=1, activation="leaky_relu", leaky_relu_alpha=0.2))[
        2
    ].negative_slope == pytest.approx(0.2)
    elu = body(build(n_hidden=1, activation="elu", elu_alpha=0.5))[2]
    assert isinstance(elu, keras.layers.ELU) and elu.alpha == pytest.approx(0.5)
    assert isinstance(body(build(n_hidden=1, activation="prelu"))[2], keras.layers.PReLU)


def test_rrelu_random_in_training_mean_at_inference():
    from trainables.layers import RReLU

    layer = body(build(n_hidden=1, activation="rrelu", rrelu_lower=0.1, rrelu_upper=0.3))[2]
    assert isinstance(layer, RReLU) and (layer.lower, layer.upper) == (0.1, 0.3)
    x = -np.ones((1, 2000), dtype="float32")
    inference = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_allclose(inference, -0.2, rtol=1e-6)
    trained = keras.ops.convert_to_numpy(layer(x, training=True))
    assert trained.min() >= -0.3 - 1e-6 and trained.max() <= -0.1 + 1e-6
    assert trained.std() > 0.03  # really random
    pos = np.ones((1, 5), dtype="float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(pos, training=True)), 1.0)


# -- batch normalization ----------------------------------------------------------------
def test_batch_norm_before_and_after_activation():
    before = build(n_hidden=2, batch_norm="before")
    assert kinds(before)[1:7] == ["Dense", "BatchNormalization", "Activation"] * 2
    assert all(not d.use_bias for d in hidden_dense(before))
    after = build(n_hidden=2, batch_norm="after")
    assert kinds(after)[1:7] == ["Dense", "Activation", "BatchNormalization"] * 2
    assert all(d.use_bias for d in hidden_dense(after))
    bn = [layer for layer in before.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert (bn[0].momentum, bn[0].epsilon) == (0.9, 1e-5)  # the text's values, not Keras'
    custom = build(n_hidden=1, batch_norm="after", bn_momentum=0.999, bn_epsilon=1e-3)
    assert (body(custom)[3].momentum, body(custom)[3].epsilon) == (0.999, 1e-3)
    assert "BatchNormalization" not in kinds(build(n_hidden=2))


def test_batch_norm_on_inputs():
    model = build(n_hidden=1, input_bn=True)
    assert kinds(model)[:3] == ["Rescaling", "BatchNormalization", "Dense"]


# -- regularization ---------------------------------------------------------------------
def test_l1_l2_l1l2_on_kernels_not_biases():
    l1 = hidden_dense(build(n_hidden=1, l1=0.001))[0]
    assert type(l1.kernel_regularizer) is keras.regularizers.L1
    assert float(l1.kernel_regularizer.l1) == pytest.approx(0.001)
    assert l1.bias_regularizer is None
    l2 = build(n_hidden=1, l2=0.01)
    assert type(hidden_dense(l2)[0].kernel_regularizer) is keras.regularizers.L2
    assert type(body(l2)[-1].kernel_regularizer) is keras.regularizers.L2  # output too
    both = hidden_dense(build(n_hidden=1, l1=0.001, l2=0.01))[0].kernel_regularizer
    assert type(both) is keras.regularizers.L1L2
    assert (float(both.l1), float(both.l2)) == pytest.approx((0.001, 0.01))
    assert hidden_dense(build(n_hidden=1))[0].kernel_regularizer is None


def test_dropout_on_inputs_and_hidden_layers_and_alpha_dropout():
    model = build(n_hidden=2, dropout=0.3, input_dropout=0.2)
    assert kinds(model) == [
        "Rescaling",
        "Dropout",
        "Dense",
        "Activation",
        "Dropout",
        "Dense",
        "Activation",
        "Dropout",
        "Dense",
    ]
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == pytest.approx([0.2, 0.3, 0.3])
    alpha = build(n_hidden=2, dropout=0.1, dropout_type="alpha")
    assert kinds(alpha).count("AlphaDropout") == 2 and "Dropout" not in kinds(alpha)


@pytest.mark.slow  # trains
def test_max_norm_constrains_each_neurons_incoming_weights():
    model = build(n_hidden=1, n_neurons=16, max_norm=1.0, learning_rate=1.0, optimizer="sgd")
    dense = hidden_dense(model)[0]
    assert isinstance(dense.kernel_constraint, keras.constraints.MaxNorm)
    assert dense.kernel_constraint.max_value == 1.0 and dense.kernel_constraint.axis == 0
    x = np.random.default_rng(0).integers(0, 16, (64, 8)).astype("float32")
    y = np.arange(64) % 3
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    norms = np.linalg.norm(keras.ops.convert_to_numpy(dense.kernel), axis=0)
    assert norms.max() <= 1.0 + 1e-5


def test_early_stopping_patience_and_restore_best_weights():
    stops = [
        c
        for c in training_callbacks({"patience": 4}, ctx())
        if isinstance(c, keras.callbacks.EarlyStopping)
    ]
    assert len(stops) == 1 and stops[0].patience == 4 and stops[0].restore_best_weights
    assert stops[0].monitor == "val_loss"
    off = training_callbacks({"patience": 3, "restore_best_weights": False}, ctx())
    assert off[0].restore_best_weights is False
    assert training_callbacks({}, ctx()) == []


# -- clipping ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["clipvalue", "clipnorm", "global_clipnorm"])
def test_gradient_clipping(kind):
    opt = build(n_hidden=1, optimizer="sgd", **{kind: 1.0}).optimizer
    assert getattr(opt, kind) == 1.0
    others = {"clipvalue", "clipnorm", "global_clipnorm"} - {kind}
    assert all(getattr(opt, o) is None for o in others)


def test_two_kinds_of_clipping_are_refused():
    with pytest.raises(ValueError, match="only one kind of gradient clipping"):
        resolve({"clipvalue": 1.0, "clipnorm": 1.0})


# -- optimizers -------------------------------------------------------------------------
OPTIMIZER_CASES = [
    ({"optimizer": "sgd"}, keras.optimizers.SGD, {"momentum": 0.0, "nesterov": False}),
    (
        {"optimizer": "sgd", "momentum": 0.5, "nesterov": True},
        keras.optimizers.SGD,
        {"momentum": 0.5, "nesterov": True},
    ),
    ({"optimizer": "momentum"}, keras.optimizers.SGD, {"momentum": 0.9, "nesterov": False}),
    ({"optimizer": "nesterov"}, keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
    ({"optimizer": "adagrad"}, keras.optimizers.Adagrad, {"epsilon": 1e-10}),
    (
        {"optimizer": "rmsprop", "rho": 0.8, "momentum": 0.5},
        keras.optimizers.RMSprop,
        {"rho": 0.8, "momentum": 0.5, "epsilon": 1e-10},
    ),
    (
        {"optimizer": "adam"},
        keras.optimizers.Adam,
        {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8},
    ),
    (
        {"optimizer": "adam", "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
        keras.optimizers.Adam,
        {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
    ),
    ({"optimizer": "adamax"}, keras.optimizers.Adamax, {"epsilon": 1e-8}),
    ({"optimizer": "nadam"}, keras.optimizers.Nadam, {"beta_1": 0.9, "epsilon": 1e-8}),
    (
        {"optimizer": "adamw", "weight_decay": 0.01},
        keras.optimizers.AdamW,
        {"weight_decay": 0.01, "epsilon": 1e-8},
    ),
    ({"optimizer": "ftrl"}, keras.optimizers.Ftrl, {}),
]


@pytest.mark.parametrize(("params", "cls", "attrs"), OPTIMIZER_CASES)
def test_optimizers_and_their_params(params, cls, attrs):
    opt = build(n_hidden=1, learning_rate=0.02, **params).optimizer
    assert isinstance(opt, cls)
    assert float(opt.learning_rate) == pytest.approx(0.02)
    for name, value in attrs.items():
        assert getattr(opt, name) == pytest.approx(value), name


def test_every_offered_choice_is_checked_here_for_what_it_builds():
    """A choice added to the params registry without a test above of the layer,
    initializer or optimizer it builds fails here."""
    tested = {
        "activation": {*PLAIN_ACTIVATIONS, "leaky_relu", "elu", "prelu", "rrelu"},
        "initializer": {name for name, _ in NAMED_INITIALIZERS} | {"variance_scaling"},
        "optimizer": {params["optimizer"] for params, _, _ in OPTIMIZER_CASES},
    }
    for param, names in tested.items():
        assert set(PARAMS[param].choices) == names, param


# -- learning-rate schedules ------------------------------------------------------------
def schedule(**params):
    return build_schedule(resolve(params), steps_per_epoch=10, epochs=10)


def test_constant_schedule():
    assert schedule(learning_rate=0.01).learning_rate == 0.01


def test_power_schedule():
    lr = schedule(learning_rate=0.01, lr_schedule="power", decay_epochs=2, power_c=2).learning_rate
    assert lr_at(lr, 0) == pytest.approx(0.01)
    assert lr_at(lr, 20) == pytest.approx(0.01 / 4)  # t = s: (1 + 1)^2
    assert lr_at(lr, 40) == pytest.approx(0.01 / 9)


def test_exponential_schedule_drops_10x_every_decay_epochs():
    lr = schedule(learning_rate=0.01, lr_schedule="exponential", decay_epochs=2).learning_rate
    assert lr_at(lr, 0) == pytest.approx(0.01)
    assert lr_at(lr, 20) == pytest.approx(0.001)
    assert lr_at(lr, 10) == pytest.approx(0.01 * 0.1**0.5)


def test_piecewise_constant_schedule_the_texts_example():
    lr = schedule(learning_rate=0.01, lr_schedule="piecewise").learning_rate
    assert [lr_at(lr, s) for s in (0, 49, 51, 149, 151, 300)] == pytest.approx(
        [0.01, 0.01, 0.005, 0.005, 0.001, 0.001]
    )
    with pytest.raises(ValueError, match="piecewise_factors"):
        resolve({"lr_schedule": "piecewise", "piecewise_factors": [1.0, 0.5]})


def test_performance_schedule_is_reduce_on_plateau():
    s = schedule(lr_schedule="performance", plateau_factor=0.2, plateau_patience=3)
    (cb,) = s.callbacks
    assert isinstance(cb, keras.callbacks.ReduceLROnPlateau)
    assert (cb.factor, cb.patience, cb.monitor) == (0.2, 3, "val_loss")
    assert [type(c) for c in training_callbacks({"lr_schedule": "performance"}, ctx())] == [
        keras.callbacks.ReduceLROnPlateau
    ]


def test_onecycle_learning_rate_and_momentum_curves():
    s = schedule(learning_rate=0.1, lr_schedule="onecycle", optimizer="nesterov")
    assert isinstance(s.learning_rate, OneCycle) and isinstance(s.momentum, OneCycleMomentum)
    # 100 steps: last 10 annihilate, half = 45
    lrs = {t: lr_at(s.learning_rate, t) for t in (0, 22, 45, 90, 100)}
    assert lrs[0] == pytest.approx(0.01)
    assert lrs[22] == pytest.approx(0.01 + 0.09 * 22 / 45, rel=1e-5)
    assert lrs[45] == pytest.approx(0.1)
    assert lrs[90] == pytest.approx(0.01)
    assert lrs[100] == pytest.approx(0.01 / 1000)
    moms = [lr_at(s.momentum, t) for t in (0, 45, 90, 100)]
    assert moms == pytest.approx([0.95, 0.85, 0.95, 0.95])
    assert schedule(lr_schedule="onecycle", optimizer="adam").momentum is None
    assert schedule(lr_schedule="onecycle", optimizer="sgd").momentum is None  # no momentum


@pytest.mark.slow  # trains
def test_onecycle_momentum_reaches_the_optimizer_step():
    model = build_model(
        {"n_hidden": 1, "optimizer": "momentum", "lr_schedule": "onecycle", "learning_rate": 0.05},
        ctx(steps_per_epoch=2, epochs=5),
    )
    opt = model.optimizer
    assert opt.current_momentum() == pytest.approx(0.95)
    x = np.zeros((8, 8), dtype="float32")
    model.fit(x, np.zeros(8, dtype="int64"), batch_size=2, epochs=1, verbose=0)
    assert int(opt.iterations) == 4 and opt.current_momentum() < 0.95


def test_cosine_with_warmup():
    lr = schedule(
        learning_rate=0.1, lr_schedule="cosine", warmup_epochs=1, cosine_alpha=0.1
    ).learning_rate
    assert lr_at(lr, 0) == pytest.approx(0.0)
    assert lr_at(lr, 5) == pytest.approx(0.05)
    assert lr_at(lr, 10) == pytest.approx(0.1)
    assert lr_at(lr, 100) == pytest.approx(0.01)


def test_schedule_reaches_the_optimizer():
    opt = make_optimizer(
        {"lr_schedule": "exponential", "learning_rate": 0.01, "decay_epochs": 1}, ctx()
    )
    assert isinstance(opt._learning_rate, keras.optimizers.schedules.ExponentialDecay)
    assert float(opt.learning_rate) == pytest.approx(0.01)  # evaluated at iterations = 0


# -- self-normalizing nets --------------------------------------------------------------
def test_selu_applies_table_11_4():
    model = build(n_hidden=3, activation="selu", dropout=0.1)
    assert all(
        isinstance(d.kernel_initializer, keras.initializers.LecunNormal)
        for d in hidden_dense(model)
    )
    assert kinds(model)[0] == "Normalization"  # standardized inputs
    assert "BatchNormalization" not in kinds(model)
    assert kinds(model).count("AlphaDropout") == 3 and "Dropout" not in kinds(model)
    assert all(
        d.kernel_regularizer is None and d.kernel_constraint is None for d in hidden_dense(model)
    )


@pytest.mark.parametrize(
    "conflict",
    [
        {"initializer": "he_normal"},
        {"batch_norm": "after"},
        {"dropout_type": "standard"},
        {"l2": 0.01},
        {"max_norm": 1.0},
        {"input_norm": "scale"},
    ],
)
def test_selu_refuses_what_breaks_self_normalization(conflict):
    with pytest.raises(ValueError, match="breaks self-normalization"):
        resolve({"activation": "selu", **conflict})


# -- misc -------------------------------------------------------------------------------
def test_unknown_param_is_refused():
    with pytest.raises(ValueError, match="n_hiden: unknown hyperparameter"):
        resolve({"n_hiden": 3})


def test_same_seed_same_weights():
    a = build_model({"n_hidden": 2, "n_neurons": 16}, ctx(seed=5))
    b = build_model({"n_hidden": 2, "n_neurons": 16}, ctx(seed=5))
    c = build_model({"n_hidden": 2, "n_neurons": 16}, ctx(seed=6))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


@pytest.mark.slow
def test_configure_threads_sets_tensorflow_threads():
    """In a fresh process (TF threads are fixed once TF starts executing)."""
    import subprocess
    import sys

    code = (
        "import tensorflow as tf; from trainables.train import configure_threads; "
        "a = configure_threads(1); tf.constant(1.0) + 1; print(a, configure_threads(2))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    # once TF runs, a second call (a reused worker) keeps the first setting
    assert out == ["1", "1"]


@pytest.mark.slow  # trains
def test_a_trials_params_are_resolved_once(monkeypatch):
    """train -> model -> optimizer -> schedule -> callbacks share one resolved value."""
    import trainables.params as params_module
    from trainables.data import load_dataset
    from trainables.task import Objective
    from trainables.train import train

    data = load_dataset({"name": "digits", "validation_size": 200, "test_size": 200}, 0)
    calls = []
    real = params_module.selu_forced
    monkeypatch.setattr(params_module, "selu_forced", lambda v: calls.append(1) or real(v))
    train(
        {"n_hidden": 1, "n_neurons": 8, "lr_schedule": "performance", "patience": 2},
        data,
        max_epochs=1,
        on_epoch_end=lambda *a: None,
        objective=Objective("val_accuracy", "max"),
    )
    assert len(calls) == 1


def test_steps_per_execution_applies_to_runs_long_enough_to_pay_for_the_loop():
    """Tracing the multi-step loop costs more than a short run's steps save."""
    from dataclasses import replace

    from trainables.train import MIN_LOOP_STEPS, build_context

    spec = replace(data_spec(), sizes={"train": 1149})  # 36 batches of 32
    long_enough = math.ceil(MIN_LOOP_STEPS / 36)
    assert build_context(spec, 32, long_enough, 0, 32).steps_per_execution == 32
    assert build_context(spec, 32, long_enough - 1, 0, 32).steps_per_execution == 1


@pytest.mark.slow  # trains
def test_steps_per_execution_changes_speed_not_results(monkeypatch):
    """trial.steps_per_execution: several steps per call into TensorFlow learn exactly
    what one step per call learns (dropout, batch norm, a schedule, a partial last call)."""
    import trainables.train as train_module
    from trainables.data import load_dataset
    from trainables.task import Objective
    from trainables.train import train

    monkeypatch.setattr(train_module, "MIN_LOOP_STEPS", 0)  # however short the run

    data = load_dataset({"name": "digits", "validation_size": 200, "test_size": 200}, 0)
    params = {"n_hidden": 2, "n_neurons": 16, "dropout": 0.2, "batch_norm": "after"}
    curves = {}
    for steps in (1, 16):
        seen: list[dict] = []
        train(
            {**params, "lr_schedule": "exponential", "batch_size": 40},
            data,
            max_epochs=2,
            on_epoch_end=lambda e, m, model, last, kept=seen: kept.append(m),
            objective=Objective("val_accuracy", "max"),
            steps_per_execution=steps,
        )
        curves[steps] = [m[k] for m in seen for k in ("loss", "val_loss", "val_accuracy")]
    assert curves[1] == pytest.approx(curves[16], abs=1e-6)
