"""A user's ``build_model(params, spec)`` (Python API): shipped to the workers with its
module's code, and tried once in the driver before any trial, so a broken builder is one
clear line, not a sweep of failed trials."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from dnn_sweep.errors import ConfigError
from search.space import SearchSpace


def ship(builder: Callable[..., Any]) -> None:
    """Pickle the builder's module by value: Ray's workers (on this machine or a
    cluster's) need not be able to import the user's script or notebook module."""
    import ray.cloudpickle

    module = sys.modules.get(getattr(builder, "__module__", "") or "")
    if module is not None and module.__name__ != "__main__":
        ray.cloudpickle.register_pickle_by_value(module)


def check_builder(builder: Callable[..., Any], space: SearchSpace, spec: Any, seed: int) -> None:
    """Build (and compile) one model from a sampled configuration.

    Raises:
        ConfigError: naming the builder's error and the params it was given.
    """
    import keras
    import optuna

    from trainables.params import known_params, resolve
    from trainables.train import build_context, make_model

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    params = space.sample(study.ask())
    try:
        batch_size = resolve(known_params(params))["batch_size"]
        make_model(params, build_context(spec, batch_size, 1, seed), builder)
    except Exception as exc:  # noqa: BLE001 - whatever the user's code raises
        first = (str(exc).splitlines() or [""])[0][:300]
        raise ConfigError(
            f"build_model: {type(exc).__name__}: {first} (with params {params})"
        ) from exc
    finally:
        keras.backend.clear_session()
