"""Searcher and scheduler factories: config options -> Optuna samplers and Tune schedulers.

Each algorithm's options, their defaults and checks are its model in ``search.schema``
(which Hydra's ``searcher=`` and ``scheduler=`` options come from); here is only the
library object each one builds, from those typed options.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from dnn_sweep.errors import ConfigError
from search.schema import Pbt, Scheduler, Searcher, validate


@dataclass(frozen=True)
class Algorithms:
    """What a new Tuner gets: the search algorithm and scheduler, and (PBT) the param
    space holding the drawn population, which then sets the number of samples."""

    search_alg: Any
    scheduler: Any
    param_space: dict[str, Any] | None = None


def _tpe(seed: int, o: Any) -> Any:
    import optuna

    return optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=o.n_startup_trials,
        multivariate=o.multivariate,
        group=o.multivariate,  # conditional params get their own joint models
        constant_liar=o.constant_liar,
    )


def _fallback(seed: int) -> Any:
    """What samplers of numeric spaces use for the params they cannot model (categorical
    or conditional ones): TPE, seeded, rather than Optuna's default random sampler."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)


def _cmaes(seed: int, o: Any) -> Any:
    import optuna

    return optuna.samplers.CmaEsSampler(
        seed=seed,
        n_startup_trials=o.n_startup_trials,
        sigma0=o.sigma0,
        use_separable_cma=o.separable,
        with_margin=o.with_margin,
        independent_sampler=_fallback(seed),
        warn_independent_sampling=False,
    )


def _gp(seed: int, o: Any) -> Any:
    import optuna

    try:
        import torch  # noqa: F401 - Optuna's GP sampler computes with it
    except ImportError:
        raise ConfigError(
            "searcher.name=gp: Optuna's GP sampler needs PyTorch; pip install "
            "'dnn-sweep[gp]' (or the CPU wheel: pip install torch --index-url "
            "https://download.pytorch.org/whl/cpu)"
        ) from None
    return optuna.samplers.GPSampler(
        seed=seed,
        n_startup_trials=o.n_startup_trials,
        deterministic_objective=False,
        independent_sampler=_fallback(seed),
        warn_independent_sampling=False,
    )


def _qmc(seed: int, o: Any) -> Any:
    import optuna

    return optuna.samplers.QMCSampler(
        qmc_type=o.qmc_type,
        scramble=o.scramble,
        seed=seed,
        independent_sampler=_fallback(seed),
        warn_independent_sampling=False,
        warn_asynchronous_seeding=False,
    )


def _nsga2(seed: int, o: Any) -> Any:
    import optuna

    return optuna.samplers.NSGAIISampler(
        seed=seed,
        population_size=o.population_size,
        mutation_prob=o.mutation_prob,
        crossover_prob=o.crossover_prob,
    )


def _random(seed: int, o: Any) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


SAMPLERS: dict[str, Callable[[int, Any], Any]] = {
    "tpe": _tpe,
    "random": _random,
    "cmaes": _cmaes,
    "gp": _gp,
    "qmc": _qmc,
    "nsga2": _nsga2,
}


def _asha(max_epochs: int, o: Any) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=max_epochs,
        grace_period=o.grace_period,
        reduction_factor=o.reduction_factor,
    )


def _hyperband(max_epochs: int, o: Any) -> Any:
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(
        time_attr="training_iteration", max_t=max_epochs, reduction_factor=o.reduction_factor
    )


def _median(max_epochs: int, o: Any) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(
        time_attr="training_iteration",
        grace_period=o.grace_period,
        min_samples_required=o.min_samples_required,
    )


def _fifo(max_epochs: int, o: Any) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


# PBT is built by make_algorithms (search.pbt): its mutations come from the space.
TUNE_SCHEDULERS: dict[str, Callable[[int, Any], Any]] = {
    "asha": _asha,
    "fifo": _fifo,
    "hyperband": _hyperband,
    "median": _median,
}


def searcher_options(options: Searcher | Mapping[str, Any]) -> Searcher:
    """A searcher's typed options (a mapping is checked against ``search.schema``)."""
    return options if isinstance(options, BaseModel) else validate(options, Searcher, "searcher")


def scheduler_options(options: Scheduler | Mapping[str, Any]) -> Scheduler:
    """A scheduler's typed options (a mapping is checked against ``search.schema``)."""
    return options if isinstance(options, BaseModel) else validate(options, Scheduler, "scheduler")


def make_sampler(options: Searcher | Mapping[str, Any], seed: int) -> Any:
    """A seeded Optuna sampler: same seed, same first configurations.

    Raises:
        ConfigError: an unknown searcher, option or value.
    """
    checked = searcher_options(options)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress panel reports trials
    with warnings.catch_warnings():  # GP, QMC, multivariate TPE... are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SAMPLERS[checked.name](seed, checked)


def make_searcher(
    space: Any,
    options: Searcher,
    seed: int,
    max_concurrent: int,
    objective: Any,
    study: Any = None,
    objectives: tuple[tuple[str, str], ...] = (),
) -> Any:
    """OptunaSearch over the define-by-run space, capped at ``max_concurrent`` trials,
    optimizing ``objective``; its study is ``study`` (a ``search.study.StudyRef``: stored,
    created beforehand) or in memory. With ``objectives`` (two or more (metric, mode)),
    the sampler gets every objective's value of each trial's last epoch."""
    from ray.tune.search import ConcurrencyLimiter

    from search.stored_search import StoredStudySearch

    stored = {} if study is None else {"study_name": study.name, "storage": study.open_storage()}
    metric: Any = [m for m, _ in objectives] if objectives else objective.metric
    mode: Any = [m for _, m in objectives] if objectives else objective.mode
    searcher = StoredStudySearch(
        space=space.define_by_run,
        metric=metric,
        mode=mode,
        sampler=make_sampler(options, seed),
        **stored,
    )
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def make_algorithms(
    space: Any,
    searcher: Searcher | Mapping[str, Any],
    scheduler: Scheduler | Mapping[str, Any],
    seed: int,
    max_concurrent: int,
    objective: Any,
    max_epochs: int,
    trials: int,
    study: Any = None,
    objectives: tuple[tuple[str, str], ...] = (),
) -> Algorithms:
    """The search algorithm and scheduler of a new sweep. With PBT, which refuses search
    algorithms, the sampler draws the initial population instead (``search.pbt``).

    Raises:
        ConfigError: an unknown algorithm, option or value.
    """
    searcher, scheduler = searcher_options(searcher), scheduler_options(scheduler)
    if objectives and searcher.name == "cmaes":
        raise ConfigError(
            "searcher.name=cmaes: Optuna's CMA-ES optimizes one objective; with several "
            "objectives use nsga2, tpe, random, qmc or gp"
        )
    if not isinstance(scheduler, Pbt):
        return Algorithms(
            make_searcher(space, searcher, seed, max_concurrent, objective, study, objectives),
            make_scheduler(scheduler, max_epochs),
        )
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from search.pbt import make_pbt, population_space

    if objectives:
        raise ConfigError("scheduler.name=pbt: PBT follows one objective; drop objectives")
    if scheduler.perturbation_interval >= max_epochs:
        raise ConfigError(
            f"scheduler.perturbation_interval={scheduler.perturbation_interval}: PBT "
            f"needs it below max_epochs ({max_epochs}) to act at all"
        )
    return Algorithms(
        BasicVariantGenerator(max_concurrent=max_concurrent),
        make_pbt(scheduler, space),
        population_space(space, make_sampler(searcher, seed), trials),
    )


def make_scheduler(options: Scheduler | Mapping[str, Any], max_epochs: int) -> Any:
    """The scheduler over epochs (``training_iteration``); the metric and mode it ranks
    trials by come from the Tuner (the sweep's objective).

    Raises:
        ConfigError: an unknown scheduler, option or value.
    """
    checked = scheduler_options(options)
    grace = getattr(checked, "grace_period", None)
    if grace is not None and grace > max_epochs:
        raise ConfigError(
            f"scheduler.grace_period={grace}: must be an integer in 1..max_epochs ({max_epochs})"
        )
    return TUNE_SCHEDULERS[checked.name](max_epochs, checked)
