"""Every hyperparameter the model builder understands: values, defaults, sources.

This is the allow-list and the single source of the docs table: a search space may only
name these params (plus ``<name>_<i>`` for per-layer ones), with values these rules
accept; a param that would be ignored in some trial (``momentum`` with ``adam``) is
refused before any trial starts. ``resolve`` fills in defaults (the texts' values
where they differ from Keras') and applies the self-normalizing rules, so the builder
only ever sees complete, consistent params.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainables.registry import ACTIVATIONS, INITIALIZERS, OPTIMIZERS, SCHEDULES

# Optimizer families, for the params that only some optimizers use.
MOMENTUM_OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop")
ADAM_FAMILY = ("adam", "adamax", "nadam", "adamw")
EPSILON_OPTIMIZERS = ("adagrad", "rmsprop", *ADAM_FAMILY)
BN_ON = ("before", "after")


class _Positive:
    """The values > 0, as a container (``applies`` tests membership)."""

    def __contains__(self, value: Any) -> bool:
        return isinstance(value, int | float) and value > 0

    def __repr__(self) -> str:
        return "> 0"


POSITIVE = _Positive()


def selu_forced(values: dict[str, Any]) -> dict[str, Any]:
    """What ``values`` must hold when their activation is selu (``SELU_RULES``), else
    nothing: the one place that says when the rule applies."""
    selu = values.get("activation", PARAMS["activation"].default) == "selu"
    return dict(SELU_RULES) if selu else {}


def selu_violation(name: str, value: Any) -> str | None:
    """Why ``name=value`` breaks a self-normalizing net, or None when it does not."""
    forced = SELU_RULES.get(name, value)
    if value == forced:
        return None
    return (
        f"{name}={value!r} breaks self-normalization: activation=selu needs "
        f"{name}={forced!r} (HOML 2e ch. 11, Summary and Practical Guidelines)"
    )


# Keras takes one kind of gradient clipping at a time.
CLIP_PARAMS = ("clipvalue", "clipnorm", "global_clipnorm")


def check_one_clipping(active: list[str]) -> None:
    """The one rule on gradient clipping, for a trial's values and a space's ranges.

    Raises:
        ValueError: two of ``CLIP_PARAMS`` are active, naming the second.
    """
    if len(active) > 1:
        raise ValueError(
            f"{active[1]}: only one of {', '.join(CLIP_PARAMS)} may be set (also set: "
            f"{active[0]}); set only one kind of gradient clipping"
        )


# HOML 2e ch. 11, Summary and Practical Guidelines (the self-normalizing net's
# configuration): what a SELU net needs. Choosing selu forces these.
SELU_RULES: dict[str, Any] = {
    "initializer": "lecun_normal",
    "batch_norm": "none",
    "input_bn": False,
    "input_norm": "standardize",
    "dropout_type": "alpha",
    "l1": 0.0,
    "l2": 0.0,
    "max_norm": 0.0,
}


@dataclass(frozen=True)
class ParamRule:
    """What values one hyperparameter accepts, its default, and where it comes from.

    Attributes:
        kind: ``int``, ``float``, ``bool``, ``choice`` or ``floats`` (a fixed list).
        doc: one line for error messages and the docs table (docs/reference.md).
        default: the value used when a space leaves the param out.
        minimum / maximum: inclusive bounds; ``above`` / ``below``: exclusive bounds.
        choices: allowed names for ``choice`` params.
        per_layer: whether the param may take one value per hidden layer.
        applies: alternatives ``(param, values)``; the param has an effect only when at
            least one holds (e.g. ``momentum`` only for momentum optimizers).
        source: where the course texts discuss it (docs table).
        needs: what the data must be for the param to have an effect: ``regression``
            (the task) or ``categorical`` (a table with categorical columns); empty for
            any data.
    """

    kind: str
    doc: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[str, ...] = ()
    per_layer: bool = False
    applies: tuple[tuple[str, Any], ...] = ()
    source: str = ""
    needs: str = ""

    def allowed(self) -> str:
        """Human-readable description of the allowed values."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        parts = [{"int": "an int", "float": "a number", "floats": "a list of numbers"}[self.kind]]
        for label, bound in (
            (">=", self.minimum),
            (">", self.above),
            ("<=", self.maximum),
            ("<", self.below),
        ):
            if bound is not None:
                parts.append(f"{label} {bound:g}")
        return (
            " and ".join([" ".join(parts[:2]), *parts[2:]]) if len(parts) > 2 else " ".join(parts)
        )

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is valid for this param."""
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "floats":
            return isinstance(value, list | tuple) and all(self._number_ok(v) for v in value)
        return self._number_ok(value) and not (self.kind == "int" and int(value) != value)

    def _number_ok(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return not (
            (self.minimum is not None and value < self.minimum)
            or (self.maximum is not None and value > self.maximum)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
        )


def _rule(kind: str, doc: str, default: Any, source: str, **kw: Any) -> ParamRule:
    return ParamRule(kind, doc, default=default, source=source, **kw)


def _when(param: str, *values: Any) -> tuple[tuple[str, Any], ...]:
    return ((param, values),)


PARAMS: dict[str, ParamRule] = {
    # -- architecture -------------------------------------------------------------------
    "n_hidden": _rule(
        "int",
        "hidden Dense layers (0 = softmax regression)",
        2,
        "18AI81 course text, Keras Tuner and 'Number of Hidden Layers'",
        minimum=0,
        maximum=100,
    ),
    "n_neurons": _rule(
        "int",
        "units per hidden layer; per_layer allowed",
        100,
        "18AI81 course text, Keras Tuner and 'Number of Neurons per Hidden Layer'",
        minimum=1,
        per_layer=True,
    ),
    "layer_shape": _rule(
        "choice",
        "uniform: n_neurons everywhere; pyramid: n_neurons "
        "shrinking linearly (300-200-100); first_bigger: first layer x "
        "first_layer_factor",
        "uniform",
        "HOML 2e ch. 10, Number of Neurons per Hidden Layer",
        choices=("uniform", "pyramid", "first_bigger"),
    ),
    "first_layer_factor": _rule(
        "float",
        "first layer size / n_neurons",
        2.0,
        "HOML 2e ch. 10, 'make the first hidden layer bigger'",
        minimum=1.0,
        applies=_when("layer_shape", "first_bigger"),
    ),
    "input_norm": _rule(
        "choice",
        "scale: divide by the largest training value (255 for 8-bit pixels; per column "
        "for tables); standardize: per-feature mean 0 / std 1 (training set); none; "
        "auto: scale for pixels, standardize for other data",
        "auto",
        "HOML 2e ch. 11, SELU 'standardized' inputs; 18AI81 course text, scaling",
        choices=("auto", "scale", "standardize", "none"),
    ),
    "categorical_encoding": _rule(
        "choice",
        "tables: categorical columns one-hot encoded, or embedded (a learned vector each)",
        "one_hot",
        "Keras StringLookup + Embedding",
        choices=("one_hot", "embedding"),
        needs="categorical",
    ),
    "embedding_dim": _rule(
        "int",
        "tables: size of each categorical column's embedding",
        8,
        "Keras Embedding",
        minimum=1,
        maximum=1024,
        applies=_when("categorical_encoding", "embedding"),
        needs="categorical",
    ),
    "regression_loss": _rule(
        "choice",
        "regression: mse, or huber (less sensitive to outliers); on the standardized target",
        "mse",
        "Keras Huber loss (not in the texts)",
        choices=("mse", "huber"),
        needs="regression",
    ),
    "huber_delta": _rule(
        "float",
        "regression: huber's threshold, in standard deviations of the target",
        1.0,
        "keras.losses.Huber(delta)",
        above=0.0,
        applies=_when("regression_loss", "huber"),
        needs="regression",
    ),
    # -- initialization -----------------------------------------------------------------
    "initializer": _rule(
        "choice",
        "hidden-layer kernel initializer",
        "glorot_uniform",
        "HOML 2e ch. 11, Glorot and He Initialization; "
        "HOML 1e ch. 11, Xavier and He Initialization",
        choices=tuple(INITIALIZERS),
    ),
    "init_scale": _rule(
        "float",
        "variance_scaling scale (2 = He)",
        2.0,
        "HOML 2e ch. 11, VarianceScaling(scale=2., mode='fan_avg')",
        above=0.0,
        applies=_when("initializer", "variance_scaling"),
    ),
    "init_mode": _rule(
        "choice",
        "variance_scaling fan mode",
        "fan_avg",
        "HOML 2e ch. 11, He init on fan_avg; HOML 1e ch. 11, mode FAN_IN/FAN_AVG",
        choices=("fan_in", "fan_avg", "fan_out"),
        applies=_when("initializer", "variance_scaling"),
    ),
    "init_distribution": _rule(
        "choice",
        "variance_scaling distribution",
        "uniform",
        "HOML 2e ch. 11, distribution='uniform'",
        choices=("uniform", "truncated_normal", "untruncated_normal"),
        applies=_when("initializer", "variance_scaling"),
    ),
    # -- activation ---------------------------------------------------------------------
    "activation": _rule(
        "choice",
        "hidden-layer activation",
        "relu",
        "HOML 1e and 2e ch. 11, Nonsaturating Activation Functions",
        choices=tuple(ACTIVATIONS),
    ),
    "leaky_relu_alpha": _rule(
        "float",
        "leaky_relu negative slope (Keras layer: 0.3)",
        0.01,
        "HOML 1e ch. 11, 'typically set to 0.01'; HOML 2e ch. 11, LeakyReLU(alpha=0.2)",
        minimum=0.0,
        below=1.0,
        applies=_when("activation", "leaky_relu"),
    ),
    "elu_alpha": _rule(
        "float",
        "elu alpha",
        1.0,
        "HOML 1e ch. 11, Nonsaturating Activation Functions (ELU; alpha 1)",
        above=0.0,
        applies=_when("activation", "elu"),
    ),
    "rrelu_lower": _rule(
        "float",
        "rrelu: lowest random slope in training",
        1 / 8,
        "HOML 1e ch. 11, RReLU (Xu et al. 2015: slope 1/U(3, 8))",
        minimum=0.0,
        below=1.0,
        applies=_when("activation", "rrelu"),
    ),
    "rrelu_upper": _rule(
        "float",
        "rrelu: highest random slope (inference: the mean)",
        1 / 3,
        "HOML 1e ch. 11, RReLU",
        minimum=0.0,
        below=1.0,
        applies=_when("activation", "rrelu"),
    ),
    # -- batch normalization ------------------------------------------------------------
    "batch_norm": _rule(
        "choice",
        "BN on hidden layers: none, before or after the activation (before drops the Dense bias)",
        "none",
        "HOML 2e ch. 11, Batch Normalization",
        choices=("none", *BN_ON),
    ),
    "input_bn": _rule(
        "bool",
        "BN as the first layer (on the inputs)",
        False,
        "HOML 2e ch. 11, BN as the first layer",
    ),
    "bn_momentum": _rule(
        "float",
        "BN moving-average momentum (Keras: 0.99)",
        0.9,
        "HOML 2e ch. 11, BN momentum 0.9/0.99/0.999",
        above=0.0,
        below=1.0,
        applies=(("batch_norm", BN_ON), ("input_bn", (True,))),
    ),
    "bn_epsilon": _rule(
        "float",
        "BN epsilon (Keras: 1e-3)",
        1e-5,
        "HOML 1e and 2e ch. 11, Batch Normalization (epsilon typically 1e-5)",
        above=0.0,
        applies=(("batch_norm", BN_ON), ("input_bn", (True,))),
    ),
    # -- regularization -----------------------------------------------------------------
    "l1": _rule(
        "float",
        "l1 penalty on hidden and output kernels (not biases)",
        0.0,
        "HOML 1e ch. 11, ℓ1 and ℓ2 Regularization (scale 0.001); HOML 2e ch. 11, l1_l2",
        minimum=0.0,
    ),
    "l2": _rule(
        "float",
        "l2 penalty on hidden and output kernels (not biases)",
        0.0,
        "HOML 2e ch. 11, keras.regularizers.l2(0.01)",
        minimum=0.0,
    ),
    "dropout": _rule(
        "float",
        "dropout rate after each hidden layer",
        0.0,
        "HOML 1e ch. 11, Dropout (p typically 50%); HOML 2e ch. 11, 10-50%",
        minimum=0.0,
        below=1.0,
    ),
    "input_dropout": _rule(
        "float",
        "dropout rate on the inputs",
        0.0,
        "HOML 1e ch. 11, Dropout ('including the input neurons')",
        minimum=0.0,
        below=1.0,
    ),
    "dropout_type": _rule(
        "choice",
        "standard Dropout or AlphaDropout (for SELU)",
        "standard",
        "HOML 2e ch. 11, alpha dropout for SELU nets",
        choices=("standard", "alpha"),
    ),
    "max_norm": _rule(
        "float",
        "max-norm of each neuron's incoming weights (0 = off; Keras: 2)",
        0.0,
        "HOML 1e ch. 11, Max-Norm Regularization (r = 1.0); HOML 2e ch. 11, max_norm(1.)",
        minimum=0.0,
    ),
    "patience": _rule(
        "int",
        "early stopping: epochs without improvement of the objective (0 = off)",
        0,
        "HOML 1e ch. 11, Early Stopping; 18AI81 course text, EarlyStopping",
        minimum=0,
    ),
    "restore_best_weights": _rule(
        "bool",
        "early stopping restores the best epoch's weights",
        True,
        "18AI81 course text, EarlyStopping(restore_best_weights=True)",
        applies=(("patience", POSITIVE),),
    ),
    # -- gradient clipping --------------------------------------------------------------
    "clipvalue": _rule(
        "float",
        "clip each gradient component to [-v, v] (0 = off)",
        0.0,
        "HOML 2e ch. 11, Gradient Clipping: SGD(clipvalue=1.0)",
        minimum=0.0,
    ),
    "clipnorm": _rule(
        "float",
        "rescale each gradient tensor to this l2 norm (0 = off)",
        0.0,
        "HOML 2e ch. 11, Gradient Clipping: clipnorm=1.0",
        minimum=0.0,
    ),
    "global_clipnorm": _rule(
        "float",
        "rescale all gradients to this global norm (0 = off)",
        0.0,
        "Pascanu et al. 2013 (HOML 1e ch. 11, Gradient Clipping)",
        minimum=0.0,
    ),
    # -- optimizer ----------------------------------------------------------------------
    "optimizer": _rule(
        "choice",
        "optimizer (momentum = SGD+0.9 momentum, nesterov = SGD+0.9 Nesterov)",
        "adam",
        "HOML 2e ch. 11, Faster Optimizers (the optimizer comparison); "
        "HOML 1e ch. 11, Faster Optimizers",
        choices=tuple(OPTIMIZERS),
    ),
    "learning_rate": _rule(
        "float",
        "learning rate (1cycle: the peak rate)",
        1e-3,
        "HOML 2e ch. 10, Learning rate ('the most important hyperparameter')",
        above=0.0,
    ),
    "batch_size": _rule(
        "int", "mini-batch size", 32, "HOML 2e ch. 10, Batch size (32 or less)", minimum=1
    ),
    "momentum": _rule(
        "float",
        "momentum (sgd 0, momentum/nesterov 0.9, rmsprop 0)",
        None,
        "HOML 1e ch. 11, Momentum Optimization (beta = 0.9)",
        minimum=0.0,
        below=1.0,
        applies=_when("optimizer", *MOMENTUM_OPTIMIZERS),
    ),
    "nesterov": _rule(
        "bool",
        "Nesterov momentum for sgd",
        False,
        "HOML 1e ch. 11, Nesterov Accelerated Gradient",
        applies=_when("optimizer", "sgd"),
    ),
    "rho": _rule(
        "float",
        "rmsprop decay",
        0.9,
        "HOML 1e ch. 11, RMSProp (decay 0.9)",
        above=0.0,
        below=1.0,
        applies=_when("optimizer", "rmsprop"),
    ),
    "beta_1": _rule(
        "float",
        "Adam-family first-moment decay",
        0.9,
        "HOML 1e ch. 11, Adam Optimization",
        above=0.0,
        below=1.0,
        applies=_when("optimizer", *ADAM_FAMILY),
    ),
    "beta_2": _rule(
        "float",
        "Adam-family second-moment decay",
        0.999,
        "HOML 1e ch. 11, Adam Optimization",
        above=0.0,
        below=1.0,
        applies=_when("optimizer", *ADAM_FAMILY),
    ),
    "epsilon": _rule(
        "float",
        "numerical epsilon (Adam family 1e-8, adagrad/rmsprop 1e-10; Keras: 1e-7)",
        None,
        "HOML 1e ch. 11, AdaGrad, RMSProp and Adam Optimization",
        above=0.0,
        applies=_when("optimizer", *EPSILON_OPTIMIZERS),
    ),
    "weight_decay": _rule(
        "float",
        "adamw decoupled weight decay",
        0.004,
        "18AI81 course text, AdamW",
        minimum=0.0,
        applies=_when("optimizer", "adamw"),
    ),
    # -- learning-rate schedule ---------------------------------------------------------
    "lr_schedule": _rule(
        "choice",
        "learning-rate schedule",
        "constant",
        "HOML 1e and 2e ch. 11, Learning Rate Scheduling",
        choices=tuple(SCHEDULES),
    ),
    "decay_epochs": _rule(
        "float",
        "power: s; exponential: epochs per 10x drop",
        20.0,
        "HOML 2e ch. 11, power/exponential (s = 20 epochs)",
        above=0.0,
        applies=_when("lr_schedule", "power", "exponential"),
    ),
    "power_c": _rule(
        "float",
        "power schedule exponent c",
        1.0,
        "HOML 2e ch. 11, power scheduling ('c typically 1')",
        above=0.0,
        applies=_when("lr_schedule", "power"),
    ),
    "piecewise_boundaries": _rule(
        "floats",
        "piecewise: epochs where the rate changes",
        [5.0, 15.0],
        "HOML 2e ch. 11, piecewise (epochs 5 and 15)",
        minimum=0.0,
        applies=_when("lr_schedule", "piecewise"),
    ),
    "piecewise_factors": _rule(
        "floats",
        "piecewise: rate multipliers, one more than boundaries",
        [1.0, 0.5, 0.1],
        "HOML 2e ch. 11, piecewise 0.01 / 0.005 / 0.001",
        above=0.0,
        applies=_when("lr_schedule", "piecewise"),
    ),
    "plateau_factor": _rule(
        "float",
        "performance: multiply the rate by this on a plateau",
        0.5,
        "HOML 2e ch. 11, ReduceLROnPlateau(factor=0.5)",
        above=0.0,
        below=1.0,
        applies=_when("lr_schedule", "performance"),
    ),
    "plateau_patience": _rule(
        "int",
        "performance: epochs without val_loss progress",
        5,
        "HOML 2e ch. 11, ReduceLROnPlateau(patience=5)",
        minimum=1,
        applies=_when("lr_schedule", "performance"),
    ),
    "warmup_epochs": _rule(
        "float",
        "cosine: linear warm-up epochs",
        1.0,
        "HOML 2e ch. 10, Batch size ('learning rate warmup')",
        minimum=0.0,
        applies=_when("lr_schedule", "cosine"),
    ),
    "cosine_alpha": _rule(
        "float",
        "cosine: final rate as a fraction of learning_rate",
        0.0,
        "Keras CosineDecay",
        minimum=0.0,
        below=1.0,
        applies=_when("lr_schedule", "cosine"),
    ),
    # -- transfer learning (with transfer.source) -----------------------------------------
    "from_scratch": _rule(
        "bool",
        "the transfer model's architecture with fresh weights, nothing frozen: the "
        "comparison that says whether transfer helps",
        False,
        "HOML 2e ch. 11, Reusing Pretrained Layers (the same model trained from scratch)",
        needs="transfer",
    ),
    "reuse_layers": _rule(
        "int",
        "hidden layers of the source reused, from the bottom (above its depth: all); "
        "n_hidden new ones go on top",
        100,
        "HOML 2e ch. 11, 'the more similar the tasks, the more layers you want to reuse'",
        minimum=0,
        maximum=100,
        needs="transfer",
    ),
    "freeze_layers": _rule(
        "int",
        "reused layers frozen, from the bottom (above reuse_layers: all); they run as at "
        "inference, and their outputs are computed once (transfer.cache)",
        100,
        "HOML 2e ch. 11, freezing the reused layers; HOML 1e ch. 11, Caching the Frozen Layers",
        minimum=0,
        maximum=100,
        applies=_when("from_scratch", False),
        needs="transfer",
    ),
    "freeze_epochs": _rule(
        "int",
        "epochs trained with freeze_layers frozen, before unfreeze_top of them are "
        "unfrozen (at or above max_epochs: never)",
        4,
        "HOML 2e ch. 11, 'train the model for a few epochs' (4), then unfreeze",
        minimum=0,
        applies=_when("from_scratch", False),
        needs="transfer",
    ),
    "unfreeze_top": _rule(
        "int",
        "frozen layers unfrozen after freeze_epochs, from the top (above freeze_layers: all)",
        100,
        "HOML 2e ch. 11, 'unfreeze one or two of the top hidden layers'",
        minimum=0,
        maximum=100,
        applies=_when("from_scratch", False),
        needs="transfer",
    ),
    "finetune_lr_factor": _rule(
        "float",
        "learning-rate multiplier once layers are unfrozen",
        0.1,
        "HOML 2e ch. 11, learning rate 1e-3 while frozen, 1e-4 after unfreezing",
        above=0.0,
        maximum=1.0,
        applies=_when("from_scratch", False),
        needs="transfer",
    ),
}


# The option groups of the docs table, in the order of the texts' chapters.
GROUPS: dict[str, tuple[str, ...]] = {
    "architecture": ("n_hidden", "n_neurons", "layer_shape", "first_layer_factor", "input_norm"),
    "tables and tasks": (
        "categorical_encoding",
        "embedding_dim",
        "regression_loss",
        "huber_delta",
    ),
    "initialization": ("initializer", "init_scale", "init_mode", "init_distribution"),
    "activation": ("activation", "leaky_relu_alpha", "elu_alpha", "rrelu_lower", "rrelu_upper"),
    "batch norm": ("batch_norm", "input_bn", "bn_momentum", "bn_epsilon"),
    "regularization": (
        "l1",
        "l2",
        "dropout",
        "input_dropout",
        "dropout_type",
        "max_norm",
        "patience",
        "restore_best_weights",
    ),
    "gradient clipping": ("clipvalue", "clipnorm", "global_clipnorm"),
    "optimizer": (
        "optimizer",
        "learning_rate",
        "batch_size",
        "momentum",
        "nesterov",
        "rho",
        "beta_1",
        "beta_2",
        "epsilon",
        "weight_decay",
    ),
    "schedule": (
        "lr_schedule",
        "decay_epochs",
        "power_c",
        "piecewise_boundaries",
        "piecewise_factors",
        "plateau_factor",
        "plateau_patience",
        "warmup_epochs",
        "cosine_alpha",
    ),
    "transfer learning": (
        "from_scratch",
        "reuse_layers",
        "freeze_layers",
        "freeze_epochs",
        "unfreeze_top",
        "finetune_lr_factor",
    ),
}


def base_name(name: str) -> str | None:
    """``n_neurons_3`` -> ``n_neurons`` for per-layer params; the name itself otherwise."""
    if name in PARAMS:
        return name
    stem, _, index = name.rpartition("_")
    if index.isdigit() and stem in PARAMS and PARAMS[stem].per_layer:
        return stem
    return None


def data_has(need: str, spec: Any, transfer: bool = False) -> bool:
    """Whether data with ``spec`` (a ``DataSpec``), in a sweep with (``transfer``) or
    without a transfer source, gives a ``needs`` param an effect."""
    if need == "transfer":
        return transfer
    if need == "regression":
        return spec.task.kind == "regression"
    if need == "categorical":
        return bool(spec.inputs.categorical)
    return True


def known_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params this registry knows (a user's ``build_model`` may declare its own)."""
    return {k: v for k, v in params.items() if base_name(k) is not None}


def layer_value(params: Mapping[str, Any], name: str, index: int) -> Any:
    """Value of a per-layer param for hidden layer ``index``: ``name_<index>``, else ``name``."""
    return params.get(f"{name}_{index}", params[name])


def _dependent_default(name: str, p: Mapping[str, Any]) -> Any:
    """Defaults that depend on the optimizer: the text's values, not Keras'."""
    if name == "momentum":
        return 0.9 if p["optimizer"] in ("momentum", "nesterov") else 0.0
    if name == "epsilon":
        return 1e-10 if p["optimizer"] in ("adagrad", "rmsprop") else 1e-8
    return PARAMS[name].default


class Resolved(dict):
    """A trial's params, complete with defaults and checked: what ``resolve`` returns,
    and returns as it is when given again, so a trial's params are resolved once on
    their way through training, the model, its optimizer and its schedule."""


def resolve(params: Mapping[str, Any]) -> Resolved:
    """Complete ``params`` with defaults and check they are consistent (a ``Resolved``
    is returned unchanged).

    Selu applies the self-normalizing configuration (lecun_normal, no BN, standardized
    inputs, alpha dropout, no l1/l2/max-norm): unset params take those values, explicitly
    different ones are refused. Raises ValueError naming the param.
    """
    if isinstance(params, Resolved):
        return params
    unknown = [k for k in params if base_name(k) is None]
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown hyperparameter; allowed are {', '.join(PARAMS)}")
    out = dict(params)
    for name, forced in selu_forced(out).items():
        if name in out and (why := selu_violation(name, out[name])):
            raise ValueError(why)
        out[name] = forced
    for name in PARAMS:  # optimizer first in dict order is not guaranteed: two passes
        if name not in out and PARAMS[name].default is not None:
            out[name] = PARAMS[name].default
    for name in PARAMS:
        out.setdefault(name, _dependent_default(name, out))
    for key, value in out.items():
        rule = PARAMS[base_name(key)]  # type: ignore[index]
        if not rule.accepts(value):
            raise ValueError(f"{key}={value!r}: must be {rule.allowed()}")
    check_one_clipping([k for k in CLIP_PARAMS if out[k] > 0])
    if len(out["piecewise_factors"]) != len(out["piecewise_boundaries"]) + 1:
        raise ValueError("piecewise_factors: needs one more value than piecewise_boundaries")
    return Resolved(out)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return "—" if value is None else str(value)


def docs_table() -> str:
    """docs/reference.md's table of every hyperparameter (kept in sync by a test)."""
    rows = [
        "| group | param | values | default | has an effect when | what | source in the texts |",
        "|---|---|---|---|---|---|---|",
    ]
    group_of = {name: group for group, names in GROUPS.items() for name in names}
    for name in sorted(PARAMS, key=lambda n: list(group_of).index(n)):
        rule = PARAMS[name]
        when = " or ".join(
            f"{g} {v!r}" if not isinstance(v, tuple) else f"{g} ∈ {{{', '.join(map(_fmt, v))}}}"
            for g, v in rule.applies
        )
        default = _fmt(rule.default) if rule.default is not None else "see what"
        needs = {
            "regression": "task regression",
            "categorical": "categorical columns",
            "transfer": "transfer.source",
        }
        when = " and ".join(filter(None, [needs.get(rule.needs, ""), when]))
        rows.append(
            f"| {group_of[name]} | `{name}` | {rule.allowed()} | {default} "
            f"| {when or 'always'} | {rule.doc} | {rule.source} |"
        )
    return "\n".join(rows)


TABLE = "params-table"  # its section of docs/reference.md (dnn_sweep.generated)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--write"]:  # python -m trainables.params --write
        from dnn_sweep.generated import write_section

        write_section(TABLE, docs_table())
    else:
        print(docs_table())
