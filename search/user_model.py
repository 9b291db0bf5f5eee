"""A user's ``build_model(params, spec)`` (Python API): shipped to the workers with its
module's code, and tried once in the driver before any trial, so a broken builder is one
clear line, not a sweep of failed trials."""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from dnn_sweep.errors import ConfigError, reason
from search.space import SearchSpace


def ship(builder: Callable[..., Any]) -> None:
    """Pickle the builder's module by value: Ray's workers (on this machine or a
    cluster's) need not be able to import the user's script or notebook module."""
    import ray.cloudpickle

    module = sys.modules.get(getattr(builder, "__module__", "") or "")
    if module is not None and module.__name__ != "__main__":
        ray.cloudpickle.register_pickle_by_value(module)


def _layers(model: Any) -> Iterator[Any]:
    """Every layer of ``model``, a nested model's own layers before the nested model."""
    for layer in getattr(model, "layers", []):
        yield from _layers(layer)
        yield layer


def _culprit(model: Any) -> tuple[Any, Exception] | None:
    """The first layer that does not come back from its own config (a ``Lambda``, which
    Keras' safe mode refuses to load; a class Keras cannot find by name), and why."""
    import keras

    for layer in _layers(model):
        try:
            keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        except Exception as exc:  # noqa: BLE001 - whatever the layer's code raises
            return layer, exc
    return None


def check_reloads(model: Any) -> None:
    """Save ``model`` and load it again as every trial's checkpoint and the final phase
    do (``model.save``, ``trainables.train.load_checkpoint``): a model that cannot be
    loaded would fail each trial at its first checkpoint reload, or the final phase.

    Raises:
        ConfigError: naming the layer (or the model) and why.
    """
    from trainables.train import load_checkpoint

    with tempfile.TemporaryDirectory(prefix="dnn-sweep-check-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "skipping variable loading": it never trained
        path = os.path.join(tmp, "model.keras")
        try:
            model.save(path)
            load_checkpoint(path)
        except Exception as exc:  # noqa: BLE001 - whatever Keras or the user's code raises
            found = _culprit(model)
            layer, why = found if found else (model, exc)
            what = f"layer '{layer.name}'" if found else "the model"
            raise ConfigError(
                f"build_model: {what} ({type(layer).__name__}) cannot be saved and loaded "
                f"again: {reason(why).split('. ')[0]}; use a custom layer registered with "
                "keras.saving.register_keras_serializable"
            ) from exc


def check_builder(builder: Callable[..., Any], space: SearchSpace, spec: Any, seed: int) -> None:
    """Build (and compile) one model from a sampled configuration, then save and load
    it once.

    Raises:
        ConfigError: naming the builder's error and the params it was given, or the
            layer that cannot be saved and loaded again.
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
        model = make_model(params, build_context(spec, batch_size, 1, seed), builder)
    except Exception as exc:  # noqa: BLE001 - whatever the user's code raises
        first = (str(exc).splitlines() or [""])[0][:300]
        raise ConfigError(
            f"build_model: {type(exc).__name__}: {first} (with params {params})"
        ) from exc
    else:
        check_reloads(model)
    finally:
        keras.backend.clear_session()
