"""Search-space YAML -> distributions: ranges, log, conditionals, per-layer, seeding."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from dnn_sweep.errors import ConfigError
from search.algorithms import make_sampler, make_searcher
from search.space import Constant, SearchSpace
from trainables.task import Objective

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sample_many(space: SearchSpace, n: int, seed: int = 0, sampler: str = "random"):
    study = optuna.create_study(direction="maximize", sampler=make_sampler({"name": sampler}, seed))
    configs = []
    for i in range(n):
        trial = study.ask()
        configs.append(space.sample(trial))
        study.tell(trial, float(i % 7))
    return configs


def test_keras_tuner_space_is_the_seeds(space_config):
    """The space holds Optuna's own distribution classes (no look-alikes)."""
    space = SearchSpace.from_config(space_config("keras_tuner"))
    dists = {p.name: p.distribution for p in space.params}
    assert dists["n_hidden"] == IntDistribution(0, 8)
    assert dists["n_neurons"] == IntDistribution(16, 256)
    lr = dists["learning_rate"]
    assert isinstance(lr, FloatDistribution)
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-2, True)
    assert isinstance(dists["optimizer"], CategoricalDistribution)
    assert dists["optimizer"].choices == ("sgd", "adam")
    assert dists["activation"] == Constant("relu")
    assert dists["input_norm"] == Constant("scale")


def test_samples_stay_in_declared_ranges(space_config):
    space = SearchSpace.from_config(space_config("keras_tuner"))
    configs = sample_many(space, 200)
    for c in configs:
        assert 0 <= c["n_hidden"] <= 8 and isinstance(c["n_hidden"], int)
        assert 16 <= c["n_neurons"] <= 256
        assert 1e-4 <= c["learning_rate"] <= 1e-2
        assert c["optimizer"] in ("sgd", "adam")
        assert c["activation"] == "relu"
    # log scale: about half the samples fall below the geometric midpoint 1e-3
    below = sum(c["learning_rate"] < 1e-3 for c in configs)
    assert 70 <= below <= 130
    assert {c["n_hidden"] for c in configs} == set(range(9))


def test_conditional_params_only_where_they_apply(space_config):
    space = SearchSpace.from_config(space_config("mlp"))
    configs = sample_many(space, 120)
    sgd = [c for c in configs if c["optimizer"] == "sgd"]
    other = [c for c in configs if c["optimizer"] != "sgd"]
    assert sgd and other
    for c in sgd:
        assert 0.8 <= c["momentum"] <= 0.99 and c["nesterov"] in (True, False)
    for c in other:
        assert "momentum" not in c and "nesterov" not in c


def test_per_layer_params_exist_only_for_existing_layers(space_config):
    space = SearchSpace.from_config(space_config("mlp"))
    for c in sample_many(space, 60):
        layers = {k for k in c if k.startswith("n_neurons_")}
        assert layers == {f"n_neurons_{i}" for i in range(c["n_hidden"])}
        assert "n_neurons" not in c
        for k in layers:
            assert 32 <= c[k] <= 512


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "qmc", "nsga2"])
def test_same_seed_same_first_configs(space_config, sampler):
    space = SearchSpace.from_config(space_config("mlp"))
    first = sample_many(space, 12, seed=3, sampler=sampler)
    again = sample_many(space, 12, seed=3, sampler=sampler)
    other = sample_many(space, 12, seed=4, sampler=sampler)
    assert first == again
    assert first != other


def test_ray_optuna_search_is_seeded(space_config):
    """The same holds through Ray Tune's OptunaSearch, the path a sweep really takes."""
    space = SearchSpace.from_config(space_config("keras_tuner"))

    def suggestions(seed: int) -> list[dict]:
        searcher = make_searcher(
            space, {"name": "tpe", "n_startup_trials": 2}, seed, 4, Objective("val_accuracy", "max")
        )
        out = []
        for i in range(6):
            cfg = searcher.suggest(f"t{i}")
            out.append(cfg)
            searcher.on_trial_complete(f"t{i}", {"val_accuracy": 0.1 * i})
        return out

    first = suggestions(0)
    assert first == suggestions(0)
    assert first[0]["activation"] == "relu"  # constants are part of the trial config
    assert first != suggestions(1)


def _space(params: dict) -> dict:
    return {"name": "t", "params": params}


@pytest.mark.parametrize(
    ("params", "key_fragment"),
    [
        ({"n_hidden": {"type": "int", "low": 5, "high": 2}}, "search_space.params.n_hidden"),
        (
            {"learning_rate": {"type": "float", "low": 0.0, "high": 1.0, "log": True}},
            "search_space.params.learning_rate",
        ),
        ({"n_hidden": {"type": "int", "low": 0.5, "high": 3}}, "search_space.params.n_hidden.low"),
        (
            {"optimizer": {"type": "categorical", "choices": []}},
            "search_space.params.optimizer.choices",
        ),
        (
            {"activation": {"type": "categorical", "choices": ["relu", "sigmoidal"]}},
            "search_space.params.activation",
        ),
        (
            {
                "n_hidden": {"type": "int", "low": 0, "high": 3},
                "momentum": {"type": "float", "low": 0.1, "high": 0.9, "when": {"optimizr": "sgd"}},
            },
            "search_space.params.momentum.when.optimizr",
        ),
        ({"n_hiden": {"type": "int", "low": 0, "high": 3}}, "search_space.params.n_hiden"),
        ({"dropout": {"type": "float", "low": 0.0, "high": 1.5}}, "search_space.params.dropout"),
        (
            {"n_hidden": {"type": "normal", "low": 0, "high": 3}},
            "search_space.params.n_hidden.type",
        ),
        (
            {"n_hidden": {"type": "int", "low": 0, "high": 3, "stepp": 2}},
            "search_space.params.n_hidden.stepp",
        ),
        (
            {"n_neurons": {"type": "int", "low": 8, "high": 64, "per_layer": "n_hidden"}},
            "search_space.params.n_neurons.per_layer",
        ),
        ({"optimizer": "adamm"}, "search_space.params.optimizer"),
    ],
)
def test_invalid_spaces_name_the_key(params, key_fragment):
    with pytest.raises(ConfigError) as err:
        SearchSpace.from_config(_space(params))
    message = str(err.value)
    assert message.startswith(key_fragment), message
    assert "\n" not in message


# -- applicability, selu, exclusivity, lists, lr finder ranges (issue 3) -----------------
def test_every_shipped_space_parses(space_config):
    from tests.conftest import CONF

    for path in sorted((CONF / "search_space").glob("*.yaml")):
        space = SearchSpace.from_config(space_config(path.stem), lr_suggestion=0.01)
        assert space.name == path.stem
        sample_many(space, 5)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {
                "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
                "momentum": {"type": "float", "low": 0.5, "high": 0.9},
            },
            "search_space.params.momentum: only has an effect when optimizer in",
        ),
        ({"beta_1": 0.8}, None),  # default optimizer adam: fine
        ({"optimizer": "sgd", "beta_1": 0.8}, "search_space.params.beta_1: only has an effect"),
        ({"elu_alpha": 0.5}, "search_space.params.elu_alpha: only has an effect when activation"),
        (
            {"lr_schedule": "power", "plateau_factor": 0.5},
            "search_space.params.plateau_factor: only has an effect",
        ),
        ({"restore_best_weights": False}, "search_space.params.restore_best_weights"),
        ({"patience": 2, "restore_best_weights": False}, None),
        ({"bn_momentum": 0.99}, "search_space.params.bn_momentum"),
        ({"input_bn": True, "bn_momentum": 0.99}, None),
        (
            {"clipvalue": 1.0, "clipnorm": {"type": "float", "low": 0.5, "high": 2.0}},
            "search_space.params.clipnorm: only one of clipvalue, clipnorm, global_clipnorm",
        ),
        ({"clipvalue": 0.0, "clipnorm": 1.0}, None),
        (
            {
                "n_hidden": 3,
                "n_neurons": {"type": "int", "low": 8, "high": 64, "per_layer": "n_hidden"},
                "layer_shape": "pyramid",
            },
            "search_space.params.n_neurons.per_layer: per-layer sizes need layer_shape=uniform",
        ),
        (
            {"activation": "selu", "initializer": "he_normal"},
            "search_space.params.initializer='he_normal' breaks self-normalization: "
            "activation=selu needs initializer='lecun_normal'",
        ),
        (
            {
                "batch_norm": "none",
                "activation": {"type": "categorical", "choices": ["relu", "selu"]},
            },
            "search_space.params.batch_norm: declare it after activation",
        ),
        (
            {"lr_schedule": "piecewise", "piecewise_boundaries": [2, 4, 6]},
            "search_space.params: piecewise_factors: needs one more value",
        ),
        (
            {
                "lr_schedule": "piecewise",
                "piecewise_boundaries": [2, 4],
                "piecewise_factors": [1, 0.5, 0.25],
            },
            None,
        ),
        (
            {"lr_schedule": "piecewise", "piecewise_factors": [1, -0.5]},
            "search_space.params.piecewise_factors: [1.0, -0.5] is not allowed",
        ),
    ],
)
def test_params_that_would_be_ignored_are_refused(params, message):
    if message is None:
        SearchSpace.from_config(_space(params))
        return
    with pytest.raises(ConfigError) as err:
        SearchSpace.from_config(_space(params))
    assert str(err.value).startswith(message), str(err.value)


def test_selu_trials_get_table_11_4_and_others_keep_their_values():
    space = SearchSpace.from_config(
        _space(
            {
                "activation": {"type": "categorical", "choices": ["relu", "selu"]},
                "initializer": "he_normal",
                "batch_norm": {"type": "categorical", "choices": ["none", "after"]},
                "dropout": 0.1,
            }
        )
    )
    configs = sample_many(space, 40)
    selu = [c for c in configs if c["activation"] == "selu"]
    relu = [c for c in configs if c["activation"] == "relu"]
    assert selu and relu
    for c in selu:
        assert (c["initializer"], c["batch_norm"]) == ("lecun_normal", "none")
    assert {c["initializer"] for c in relu} == {"he_normal"}
    assert {c["batch_norm"] for c in relu} == {"none", "after"}
    from trainables.params import resolve

    for c in configs:  # every sampled config builds without violating the selu rules
        resolved = resolve(c)
        if c["activation"] == "selu":
            assert resolved["dropout_type"] == "alpha"


def test_lr_finder_range_comes_from_the_suggestion():
    cfg = _space({"learning_rate": {"lr_find": {"low": 0.1, "high": 3}}})
    assert SearchSpace.needs_lr_suggestion(cfg)
    space = SearchSpace.from_config(cfg, lr_suggestion=0.01)
    dist = space.params[0].distribution
    assert isinstance(dist, FloatDistribution)
    assert (dist.low, dist.high, dist.log) == pytest.approx((0.001, 0.03, True))
    with pytest.raises(ConfigError, match="search_space.params.learning_rate.lr_find: no"):
        SearchSpace.from_config(cfg)
    assert not SearchSpace.needs_lr_suggestion(_space({"learning_rate": 0.01}))
