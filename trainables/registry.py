"""Name -> Keras object factories: the only way a config can reach Keras.

Configs name things (``he_normal``, ``nadam``); these registries map names to
constructors. They double as the allow-list (no config can import arbitrary Python)
and as the source of the docs. Values the seed text sets differently from Keras'
defaults are set here explicitly (see ../shared/SEEDS-DIGEST.md, section 6).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _k() -> Any:
    """Keras, imported on first use so that validating names never loads TensorFlow."""
    import keras

    return keras

# Adam-family epsilon from the text (Keras defaults to 1e-7).
TEXT_ADAM_EPSILON = 1e-8
# Leaky ReLU slope: Xu et al. 2015 found the "huge leak" 0.2 beat 0.01 (seed 000/001).
TEXT_LEAKY_ALPHA = 0.2


def _activation_layer(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda params: _k().layers.Activation(name)


# name -> (params -> activation layer)
ACTIVATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "relu": _activation_layer("relu"),
    "leaky_relu": lambda params: _k().layers.LeakyReLU(
        negative_slope=float(params.get("leaky_relu_alpha", TEXT_LEAKY_ALPHA))
    ),
    "elu": _activation_layer("elu"),
    "selu": _activation_layer("selu"),
    "gelu": _activation_layer("gelu"),
    "swish": _activation_layer("swish"),
    "tanh": _activation_layer("tanh"),
    "sigmoid": _activation_layer("sigmoid"),
}

# name -> (seed -> initializer)
INITIALIZERS: dict[str, Callable[[int], Any]] = {
    "glorot_uniform": lambda seed: _k().initializers.GlorotUniform(seed=seed),
    "glorot_normal": lambda seed: _k().initializers.GlorotNormal(seed=seed),
    "he_uniform": lambda seed: _k().initializers.HeUniform(seed=seed),
    "he_normal": lambda seed: _k().initializers.HeNormal(seed=seed),
    "lecun_uniform": lambda seed: _k().initializers.LecunUniform(seed=seed),
    "lecun_normal": lambda seed: _k().initializers.LecunNormal(seed=seed),
}


def _sgd(p: dict[str, Any], lr: Any) -> Any:
    return _k().optimizers.SGD(
        learning_rate=lr,
        momentum=float(p.get("momentum", 0.0)),
        nesterov=bool(p.get("nesterov", False)),
    )


# name -> (params, learning rate or schedule -> optimizer)
OPTIMIZERS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "sgd": _sgd,
    "adam": lambda p, lr: _k().optimizers.Adam(
        learning_rate=lr, beta_1=0.9, beta_2=0.999, epsilon=TEXT_ADAM_EPSILON
    ),
    "nadam": lambda p, lr: _k().optimizers.Nadam(
        learning_rate=lr, beta_1=0.9, beta_2=0.999, epsilon=TEXT_ADAM_EPSILON
    ),
    "adamax": lambda p, lr: _k().optimizers.Adamax(
        learning_rate=lr, beta_1=0.9, beta_2=0.999, epsilon=TEXT_ADAM_EPSILON
    ),
    "adamw": lambda p, lr: _k().optimizers.AdamW(
        learning_rate=lr,
        weight_decay=float(p.get("weight_decay", 0.004)),
        epsilon=TEXT_ADAM_EPSILON,
    ),
    "rmsprop": lambda p, lr: _k().optimizers.RMSprop(
        learning_rate=lr, rho=0.9, momentum=float(p.get("momentum", 0.0))
    ),
    "adagrad": lambda p, lr: _k().optimizers.Adagrad(learning_rate=lr),
}
