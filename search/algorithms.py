"""Searcher and scheduler factories: config options -> Optuna samplers and Tune schedulers.

Each algorithm is one row of a table: its options with their defaults and checks, and
the library object it builds. A config group file (``conf/searcher/*.yaml``,
``conf/scheduler/*.yaml``) holds the same defaults for users to read and override; an
option the table does not list is refused by name, never passed on or ignored.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dnn_sweep.errors import ConfigError

Check = Callable[[str, Any], Any]


def _int_from(low: int) -> Check:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{key}={value!r}: must be an integer >= {low}")
        return value

    return check


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r}: must be true or false")
    return value


def _fraction(key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{key}={value!r}: must be a probability in [0, 1] (or null)")
    return float(value)


def _positive(key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key}={value!r}: must be a number > 0 (or null)")
    return float(value)


def _above_one(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 1:
        raise ConfigError(f"{key}={value!r}: must be a number > 1")
    return float(value)


def _one_of(*allowed: str) -> Check:
    def check(key: str, value: Any) -> str:
        if value not in allowed:
            raise ConfigError(f"{key}={value!r}: allowed are {', '.join(allowed)}")
        return value

    return check


def _names(key: str, value: Any) -> tuple[str, ...]:
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(v, str) for v in value)
    ):
        raise ConfigError(f"{key}={value!r}: must be a non-empty list of hyperparameter names")
    return tuple(value)


@dataclass(frozen=True)
class Algorithms:
    """What a new Tuner gets: the search algorithm and scheduler, and (PBT) the param
    space holding the drawn population, which then sets the number of samples."""

    search_alg: Any
    scheduler: Any
    param_space: dict[str, Any] | None = None


@dataclass(frozen=True)
class Algorithm:
    """One searcher or scheduler: its options ({name: (default, check)}) and factory."""

    options: dict[str, tuple[Any, Check]]
    build: Callable[..., Any] | None

    def checked(self, group: str, given: dict[str, Any]) -> dict[str, Any]:
        """The options with defaults filled in, each checked.

        Raises:
            ConfigError: an unknown option or a bad value, named ``group.option``.
        """
        name = given.get("name")
        extra = sorted(set(given) - set(self.options) - {"name"})
        if extra:
            raise ConfigError(f"{group}.{extra[0]}: unknown option for {group} ({name})")
        return {
            key: check(f"{group}.{key}", given.get(key, default))
            for key, (default, check) in self.options.items()
        }


def _tpe(seed: int, o: dict[str, Any]) -> Any:
    import optuna

    return optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=o["n_startup_trials"],
        multivariate=o["multivariate"],
        group=o["multivariate"],  # conditional params get their own joint models
        constant_liar=o["constant_liar"],
    )


def _fallback(seed: int) -> Any:
    """What samplers of numeric spaces use for the params they cannot model (categorical
    or conditional ones): TPE, seeded, rather than Optuna's default random sampler."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)


def _cmaes(seed: int, o: dict[str, Any]) -> Any:
    import optuna

    return optuna.samplers.CmaEsSampler(
        seed=seed,
        n_startup_trials=o["n_startup_trials"],
        sigma0=o["sigma0"],
        use_separable_cma=o["separable"],
        with_margin=o["with_margin"],
        independent_sampler=_fallback(seed),
        warn_independent_sampling=False,
    )


def _gp(seed: int, o: dict[str, Any]) -> Any:
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
        n_startup_trials=o["n_startup_trials"],
        deterministic_objective=False,
        independent_sampler=_fallback(seed),
        warn_independent_sampling=False,
    )


def _qmc(seed: int, o: dict[str, Any]) -> Any:
    import optuna

    return optuna.samplers.QMCSampler(
        qmc_type=o["qmc_type"],
        scramble=o["scramble"],
        seed=seed,
        independent_sampler=_fallback(seed),
        warn_independent_sampling=False,
        warn_asynchronous_seeding=False,
    )


def _nsga2(seed: int, o: dict[str, Any]) -> Any:
    import optuna

    return optuna.samplers.NSGAIISampler(
        seed=seed,
        population_size=o["population_size"],
        mutation_prob=o["mutation_prob"],
        crossover_prob=o["crossover_prob"],
    )


def _random(seed: int, o: dict[str, Any]) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


SEARCHERS: dict[str, Algorithm] = {
    "tpe": Algorithm(
        {
            "n_startup_trials": (8, _int_from(0)),
            "multivariate": (True, _flag),
            "constant_liar": (True, _flag),
        },
        _tpe,
    ),
    "random": Algorithm({}, _random),
    "cmaes": Algorithm(
        {
            "n_startup_trials": (4, _int_from(0)),
            "sigma0": (None, _positive),
            "separable": (False, _flag),
            "with_margin": (True, _flag),
        },
        _cmaes,
    ),
    "gp": Algorithm({"n_startup_trials": (8, _int_from(0))}, _gp),
    "qmc": Algorithm(
        {"qmc_type": ("sobol", _one_of("sobol", "halton")), "scramble": (True, _flag)}, _qmc
    ),
    "nsga2": Algorithm(
        {
            "population_size": (8, _int_from(2)),
            "mutation_prob": (None, _fraction),
            "crossover_prob": (0.9, _fraction),
        },
        _nsga2,
    ),
}


def _asha(max_epochs: int, o: dict[str, Any]) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=max_epochs,
        grace_period=o["grace_period"],
        reduction_factor=o["reduction_factor"],
    )


def _hyperband(max_epochs: int, o: dict[str, Any]) -> Any:
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(
        time_attr="training_iteration", max_t=max_epochs, reduction_factor=o["reduction_factor"]
    )


def _median(max_epochs: int, o: dict[str, Any]) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(
        time_attr="training_iteration",
        grace_period=o["grace_period"],
        min_samples_required=o["min_samples_required"],
    )


def _fifo(max_epochs: int, o: dict[str, Any]) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


SCHEDULERS: dict[str, Algorithm] = {
    "asha": Algorithm(
        {"grace_period": (1, _int_from(1)), "reduction_factor": (3, _above_one)}, _asha
    ),
    "fifo": Algorithm({}, _fifo),
    "hyperband": Algorithm({"reduction_factor": (3, _above_one)}, _hyperband),
    "pbt": Algorithm(
        {
            "perturbation_interval": (2, _int_from(1)),
            "mutate": (("learning_rate",), _names),
            "quantile_fraction": (0.25, _fraction),
            "resample_probability": (0.25, _fraction),
        },
        None,  # built by search.pbt.make_pbt: its mutations come from the search space
    ),
    "median": Algorithm(
        {"grace_period": (1, _int_from(1)), "min_samples_required": (3, _int_from(1))}, _median
    ),
}


def _pick(group: str, table: dict[str, Algorithm], options: dict[str, Any]) -> Algorithm:
    name = options.get("name")
    if name not in table:
        raise ConfigError(f"{group}.name={name!r}: allowed are {', '.join(table)}")
    return table[name]


def make_sampler(options: dict[str, Any], seed: int) -> Any:
    """A seeded Optuna sampler: same seed, same first configurations.

    Raises:
        ConfigError: an unknown searcher, option or value.
    """
    algorithm = _pick("searcher", SEARCHERS, options)
    checked = algorithm.checked("searcher", options)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress panel reports trials
    with warnings.catch_warnings():  # GP, QMC, multivariate TPE... are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        assert algorithm.build is not None
        return algorithm.build(seed, checked)


def make_searcher(
    space: Any,
    options: dict[str, Any],
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
    searcher: dict[str, Any],
    scheduler: dict[str, Any],
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
    if objectives and searcher.get("name") == "cmaes":
        raise ConfigError(
            "searcher.name=cmaes: Optuna's CMA-ES optimizes one objective; with several "
            "objectives use nsga2, tpe, random, qmc or gp"
        )
    if scheduler.get("name") != "pbt":
        return Algorithms(
            make_searcher(space, searcher, seed, max_concurrent, objective, study, objectives),
            make_scheduler(scheduler, max_epochs),
        )
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from search.pbt import make_pbt, population_space

    if objectives:
        raise ConfigError("scheduler.name=pbt: PBT follows one objective; drop objectives")
    options = SCHEDULERS["pbt"].checked("scheduler", scheduler)
    if options["perturbation_interval"] >= max_epochs:
        raise ConfigError(
            f"scheduler.perturbation_interval={options['perturbation_interval']}: PBT "
            f"needs it below max_epochs ({max_epochs}) to act at all"
        )
    return Algorithms(
        BasicVariantGenerator(max_concurrent=max_concurrent),
        make_pbt(options, space),
        population_space(space, make_sampler(searcher, seed), trials),
    )


def make_scheduler(options: dict[str, Any], max_epochs: int) -> Any:
    """The scheduler over epochs (``training_iteration``); the metric and mode it ranks
    trials by come from the Tuner (the sweep's objective).

    Raises:
        ConfigError: an unknown scheduler, option or value.
    """
    algorithm = _pick("scheduler", SCHEDULERS, options)
    checked = algorithm.checked("scheduler", options)
    grace = checked.get("grace_period")
    if grace is not None and grace > max_epochs:
        raise ConfigError(
            f"scheduler.grace_period={grace}: must be an integer in 1..max_epochs ({max_epochs})"
        )
    assert algorithm.build is not None, "PBT is built by make_algorithms (search.pbt)"
    return algorithm.build(max_epochs, checked)
