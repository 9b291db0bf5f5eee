"""Name -> Keras object factories: the only way a config can reach Keras.

Configs name things (``he_normal``, ``nadam``); these registries map names to
constructors taking the resolved params (see ``trainables.params.resolve``). They double
as the allow-list (no config imports arbitrary Python) and as the source of the docs.
Keras is imported on first use, so validating names never loads TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Params = dict[str, Any]


def _k() -> Any:
    import keras

    return keras


def _layers() -> Any:
    from trainables import layers

    return layers


def _activation(name: str) -> Callable[[Params], Any]:
    return lambda p: _k().layers.Activation(name)


# name -> (params -> activation layer)
ACTIVATIONS: dict[str, Callable[[Params], Any]] = {
    "relu": _activation("relu"),
    "leaky_relu": lambda p: _k().layers.LeakyReLU(negative_slope=p["leaky_relu_alpha"]),
    "prelu": lambda p: _k().layers.PReLU(),
    "rrelu": lambda p: _layers().RReLU(lower=p["rrelu_lower"], upper=p["rrelu_upper"]),
    "elu": lambda p: _k().layers.ELU(alpha=p["elu_alpha"]),
    "selu": _activation("selu"),
    "gelu": _activation("gelu"),
    "swish": _activation("swish"),
    "tanh": _activation("tanh"),
    "sigmoid": _activation("sigmoid"),
}


def _variance_scaling(p: Params, seed: int) -> Any:
    return _k().initializers.VarianceScaling(
        scale=p["init_scale"],
        mode=p["init_mode"],
        distribution=p["init_distribution"],
        seed=seed,
    )


# name -> (params, seed -> initializer)
INITIALIZERS: dict[str, Callable[[Params, int], Any]] = {
    "glorot_uniform": lambda p, s: _k().initializers.GlorotUniform(seed=s),
    "glorot_normal": lambda p, s: _k().initializers.GlorotNormal(seed=s),
    "he_uniform": lambda p, s: _k().initializers.HeUniform(seed=s),
    "he_normal": lambda p, s: _k().initializers.HeNormal(seed=s),
    "lecun_uniform": lambda p, s: _k().initializers.LecunUniform(seed=s),
    "lecun_normal": lambda p, s: _k().initializers.LecunNormal(seed=s),
    "variance_scaling": _variance_scaling,
}


def _clip(p: Params) -> dict[str, float]:
    """Keras takes one clipping kind at most; ``resolve`` already checked that."""
    return {k: p[k] for k in ("clipvalue", "clipnorm", "global_clipnorm") if p[k] > 0}


def _sgd(nesterov: bool) -> Callable[..., Any]:
    """SGD family; momentum comes from params (resolved default: sgd 0, the others 0.9)."""

    def make(p: Params, lr: Any, momentum_schedule: Any = None) -> Any:
        return _layers().ScheduledMomentumSGD(
            learning_rate=lr,
            momentum=p["momentum"],
            nesterov=nesterov or p["nesterov"],
            momentum_schedule=momentum_schedule,
            **_clip(p),
        )

    return make


def _adam_family(cls: str) -> Callable[..., Any]:
    def make(p: Params, lr: Any, momentum_schedule: Any = None) -> Any:
        extra = {"weight_decay": p["weight_decay"]} if cls == "AdamW" else {}
        return getattr(_k().optimizers, cls)(
            learning_rate=lr,
            beta_1=p["beta_1"],
            beta_2=p["beta_2"],
            epsilon=p["epsilon"],
            **extra,
            **_clip(p),
        )

    return make


# name -> (params, learning rate or schedule, momentum schedule or None -> optimizer)
OPTIMIZERS: dict[str, Callable[..., Any]] = {
    "sgd": _sgd(nesterov=False),
    "momentum": _sgd(nesterov=False),
    "nesterov": _sgd(nesterov=True),
    "adagrad": lambda p, lr, ms=None: _k().optimizers.Adagrad(
        learning_rate=lr, epsilon=p["epsilon"], **_clip(p)
    ),
    "rmsprop": lambda p, lr, ms=None: _k().optimizers.RMSprop(
        learning_rate=lr,
        rho=p["rho"],
        momentum=p["momentum"],
        epsilon=p["epsilon"],
        **_clip(p),
    ),
    "adam": _adam_family("Adam"),
    "adamax": _adam_family("Adamax"),
    "nadam": _adam_family("Nadam"),
    "adamw": _adam_family("AdamW"),
    "ftrl": lambda p, lr, ms=None: _k().optimizers.Ftrl(learning_rate=lr, **_clip(p)),
}

# Optimizers whose momentum 1cycle cycles (0.95 -> 0.85 -> 0.95).
CYCLIC_MOMENTUM_OPTIMIZERS = ("sgd", "momentum", "nesterov")

# Learning-rate schedule names; built by trainables.schedules.
SCHEDULES = ("constant", "power", "exponential", "piecewise", "performance", "onecycle", "cosine")
