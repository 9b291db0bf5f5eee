"""Population-based training (Jaderberg et al., 2017) through Tune's scheduler.

Tune's ``PopulationBasedTraining`` refuses a search algorithm: the population is drawn
up front by the sweep's own sampler (so ``seed`` and the space decide it), then PBT
exploits (a lagging trial continues from a leader's checkpoint, with its config) and
explores (it perturbs the params in ``scheduler.mutate``, within the space's ranges).
The trainable sees the new config with the donor's checkpoint and keeps the weights
under a model rebuilt for the new params (``trainables.train``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from dnn_sweep.errors import ConfigError
from search.schema import Pbt

# Tune's basic generator only sets keys its param space has, and conditional params are
# absent from some configs: each drawn config goes in whole, as one grid value, under
# this key. ``flat`` takes it out again wherever a trial's params are read.
POPULATION_KEY = "pbt_params"

# Params PBT may change in the middle of training: those that leave the weights' shapes
# alone (training dynamics and regularization), so a checkpoint fits the new model.
MUTABLE = (
    "learning_rate",
    "momentum",
    "rho",
    "beta_1",
    "beta_2",
    "epsilon",
    "weight_decay",
    "l1",
    "l2",
    "dropout",
    "input_dropout",
    "clipvalue",
    "clipnorm",
    "global_clipnorm",
    "batch_size",
)


def mutations(space: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Tune domains for the params PBT explores, from the space's own distributions.

    Raises:
        ConfigError: a name PBT cannot change, that the space does not search, or that
            not every trial has (a conditional or per-layer param).
    """
    by_name = {p.name: p for p in space.params}
    found = {}
    for name in names:
        key = f"scheduler.mutate: {name}"
        if name not in MUTABLE:
            raise ConfigError(
                f"{key} would change the weights' shapes or the model; PBT can change "
                f"{', '.join(MUTABLE)}"
            )
        param = by_name.get(name)
        if param is None or not isinstance(
            param.distribution, FloatDistribution | IntDistribution | CategoricalDistribution
        ):
            raise ConfigError(f"{key} is not searched by search_space '{space.name}'")
        if param.when or param.per_layer:
            raise ConfigError(
                f"{key} is conditional or per layer in search_space '{space.name}'; PBT "
                "changes only params every trial has"
            )
        found[name] = _domain(param.distribution)
    return found


def _domain(dist: Any) -> Any:
    from ray import tune

    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution):
        if dist.step > 1:
            return tune.qrandint(dist.low, dist.high, dist.step)
        return (tune.lograndint if dist.log else tune.randint)(dist.low, dist.high + 1)
    if dist.step:
        return tune.quniform(dist.low, dist.high, dist.step)
    return (tune.loguniform if dist.log else tune.uniform)(dist.low, dist.high)


def make_pbt(options: Pbt, space: Any) -> Any:
    """Tune's PBT over epochs; ranks by the Tuner's metric and mode (the objective)."""
    from ray.tune.schedulers import PopulationBasedTraining

    return PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=options.perturbation_interval,
        hyperparam_mutations={POPULATION_KEY: mutations(space, options.mutate)},
        quantile_fraction=options.quantile_fraction,
        resample_probability=options.resample_probability,
    )


def population(space: Any, sampler: Any, size: int) -> list[dict[str, Any]]:
    """``size`` configurations drawn by the sweep's sampler (no results to learn from:
    PBT's exploit and explore do the searching)."""
    import optuna

    study = optuna.create_study(sampler=sampler)
    drawn = []
    for _ in range(size):
        trial = study.ask()
        drawn.append(space.sample(trial))
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return drawn


def population_space(space: Any, sampler: Any, size: int) -> dict[str, Any]:
    """The Tuner's param space: a grid over the drawn population (run once each)."""
    from ray import tune

    return {POPULATION_KEY: tune.grid_search(population(space, sampler, size))}


def flat(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's params, whether it came from the searcher or from the population."""
    inner = config.get(POPULATION_KEY)
    return dict(inner) if isinstance(inner, Mapping) else dict(config)
