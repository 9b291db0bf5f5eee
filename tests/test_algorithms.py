"""Searchers and schedulers: their options checked by name, and each one running a
4-trial digits sweep end to end (two algorithms per sweep: a searcher and a scheduler)."""

from __future__ import annotations

import importlib.util

import pytest
from mlflow.tracking import MlflowClient

from dnn_sweep.errors import ConfigError
from search.algorithms import SAMPLERS, TUNE_SCHEDULERS, make_algorithms, make_sampler
from search.space import SearchSpace
from tests.helpers import trial_runs
from trainables.task import Objective

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "cmaes", "sigma0": -1}, "searcher.sigma0=-1: must be a number > 0"),
        ({"name": "qmc", "qmc_type": "lhs"}, "searcher.qmc_type='lhs': allowed are sobol, halton"),
        ({"name": "nsga2", "population_size": 1}, "searcher.population_size=1: must be an"),
        ({"name": "nsga2", "crossover_prob": 2}, "searcher.crossover_prob=2: must be a number <="),
        ({"name": "tpe", "popsize": 3}, "searcher.popsize: unknown config key"),
        ({"name": "bohb"}, "searcher.name='bohb': allowed are tpe, random, cmaes, gp, qmc"),
        ({"name": "tpe", "multivariate": "yes"}, "searcher.multivariate='yes': must be true or"),
    ],
)
def test_searcher_options_are_checked_by_name(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_sampler(options, seed=0)


def _algorithms(space_config, scheduler, space="keras_tuner", searcher=None):
    return make_algorithms(
        SearchSpace.from_config(space_config(space)),
        searcher or {"name": "random"},
        scheduler,
        0,
        2,
        Objective("val_accuracy", "max"),
        10,
        4,
    )


@pytest.mark.parametrize(
    ("scheduler", "space", "message"),
    [
        ({"name": "median", "grace_period": 0}, "keras_tuner", "scheduler.grace_period=0"),
        ({"name": "median", "grace_period": 11}, "keras_tuner", "must be an integer in 1..max"),
        ({"name": "hyperband", "reduction_factor": 1}, "keras_tuner", "reduction_factor=1"),
        ({"name": "pbt", "mutate": ["n_neurons"]}, "keras_tuner", "n_neurons would change"),
        ({"name": "pbt", "mutate": ["momentum"]}, "keras_tuner", "momentum is not searched"),
        ({"name": "pbt", "mutate": ["momentum"]}, "default_dnn", "momentum is conditional"),
        ({"name": "pbt", "perturbation_interval": 10}, "keras_tuner", "below max_epochs"),
        ({"name": "pbt", "mutate": []}, "keras_tuner", "scheduler.mutate=\\[\\]: must be"),
    ],
)
def test_scheduler_options_are_checked_by_name(space_config, scheduler, space, message):
    with pytest.raises(ConfigError, match=message):
        _algorithms(space_config, scheduler, space)


def test_pbt_population_is_drawn_by_the_seeded_sampler(space_config):
    """PBT refuses search algorithms: the sweep's sampler draws the population up front,
    into a grid Tune runs once each, and PBT perturbs within the space's own range."""
    first = _algorithms(space_config, {"name": "pbt"})
    again = _algorithms(space_config, {"name": "pbt"})
    population = first.param_space["pbt_params"]["grid_search"]
    assert len(population) == 4
    assert population == again.param_space["pbt_params"]["grid_search"]
    assert len({c["learning_rate"] for c in population}) == 4
    lr = first.scheduler._hyperparam_mutations["pbt_params"]["learning_rate"]
    assert (lr.lower, lr.upper) == (1e-4, 1e-2)


def test_every_option_of_the_schema_is_a_hydra_option_with_a_builder():
    """`searcher=NAME` and `scheduler=NAME` offer exactly the schema's algorithms, each
    composed with the schema's defaults and built by a factory here (PBT by search.pbt)."""
    from search.config import compose, to_plain
    from search.schema import OPTIONS

    assert set(SAMPLERS) == set(OPTIONS["searcher"])
    assert set(TUNE_SCHEDULERS) | {"pbt"} == set(OPTIONS["scheduler"])
    for group, options in OPTIONS.items():
        for name, option in options.items():
            composed = to_plain(compose([f"{group}={name}"]))[group]
            assert composed == option.model_dump(), (group, name)


def _sweep(tmp_path, name: str, *overrides: str, concurrent: int = 2):
    from dnn_sweep import run_sweep

    uri = f"sqlite:///{tmp_path / 'algo.db'}"
    run_sweep(
        [
            "dataset=digits",
            "search_space=keras_tuner",
            "trials=4",
            f"max_concurrent={concurrent}",
            f"name={name}",
            f"tracking.uri={uri}",
            f"ray.storage_path={tmp_path / 'ray_results'}",
            "ensemble.size=1",  # the algorithms are under test here, not the final model
            *overrides,
        ],
        echo=lambda line: None,
    )
    client = MlflowClient(uri)
    (parent,), children = trial_runs(client, name)
    assert len(children) == 4
    assert all(int(c.data.tags["epochs"]) >= 1 for c in children)
    assert parent.data.tags.get("dnn_sweep.model_uri") or parent.data.metrics["test_accuracy"]
    return parent, children


PAIRS = [
    ("cmaes", "hyperband", ()),
    ("qmc", "median", ("scheduler.min_samples_required=2",)),
    pytest.param(
        "gp",
        "fifo",
        (),
        marks=pytest.mark.skipif(not HAS_TORCH, reason="searcher=gp needs PyTorch"),
    ),
]


@pytest.mark.slow
@pytest.mark.usefixtures("shared_ray")
@pytest.mark.parametrize(("searcher", "scheduler", "extra"), PAIRS)
def test_searcher_and_scheduler_run_a_sweep(tmp_path, searcher, scheduler, extra):
    parent, _ = _sweep(
        tmp_path,
        searcher,
        f"searcher={searcher}",
        f"scheduler={scheduler}",
        "max_epochs=2",
        *extra,
    )
    assert (parent.data.params["searcher"], parent.data.params["scheduler"]) == (
        searcher,
        scheduler,
    )
