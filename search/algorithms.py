"""Searcher and scheduler factories: config options -> Ray Tune objects."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from search.errors import ConfigError
from search.space import SearchSpace
from trainables.task import Objective


def make_sampler(options: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """A seeded Optuna sampler: same seed, same first configurations."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # Ray/our progress reports trials
    opts = dict(options)
    name = opts.pop("name")
    if name == "random":
        _no_extra(opts, "searcher (random)")
        return optuna.samplers.RandomSampler(seed=seed)
    allowed = {"n_startup_trials", "multivariate", "constant_liar"}
    _no_extra({k: v for k, v in opts.items() if k not in allowed}, "searcher (tpe)")
    startup = opts.get("n_startup_trials", 8)
    if isinstance(startup, bool) or not isinstance(startup, int) or startup < 0:
        raise ConfigError(f"searcher.n_startup_trials={startup!r}: must be an integer >= 0")
    flags = {}
    for key in ("multivariate", "constant_liar"):
        flags[key] = opts.get(key, True)
        if not isinstance(flags[key], bool):
            raise ConfigError(f"searcher.{key}={flags[key]!r}: must be true or false")
    with warnings.catch_warnings():  # multivariate/group/constant_liar are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=startup,
            multivariate=flags["multivariate"],
            group=flags["multivariate"],  # conditional params get their own joint models
            constant_liar=flags["constant_liar"],
        )


def make_searcher(
    space: SearchSpace,
    options: dict[str, Any],
    seed: int,
    max_concurrent: int,
    objective: Objective,
) -> Searcher:
    """OptunaSearch over the define-by-run space, capped at ``max_concurrent`` trials,
    optimizing ``objective``."""
    searcher = OptunaSearch(
        space=space.define_by_run,
        metric=objective.metric,
        mode=objective.mode,
        sampler=make_sampler(options, seed),
    )
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def make_scheduler(options: dict[str, Any], max_epochs: int) -> TrialScheduler:
    """ASHA over epochs (``training_iteration``), or FIFO (no scheduler stopping). The
    metric and mode ASHA ranks trials by come from the Tuner (the sweep's objective)."""
    opts = dict(options)
    name = opts.pop("name")
    if name == "fifo":
        _no_extra(opts, "scheduler (fifo)")
        return FIFOScheduler()
    grace = opts.pop("grace_period", 1)
    factor = opts.pop("reduction_factor", 3)
    _no_extra(opts, "scheduler (asha)")
    if not isinstance(grace, int) or not 1 <= grace <= max_epochs:
        raise ConfigError(f"scheduler.grace_period={grace!r}: must be an int in 1..max_epochs")
    if not isinstance(factor, int | float) or factor <= 1:
        raise ConfigError(f"scheduler.reduction_factor={factor!r}: must be > 1")
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=max_epochs,
        grace_period=grace,
        reduction_factor=factor,
    )


def _no_extra(opts: dict[str, Any], group: str) -> None:
    if opts:
        raise ConfigError(f"{group.split()[0]}.{sorted(opts)[0]}: unknown option for {group}")
