"""The hyperparameters the model builder understands, with what each may hold.

This is the allow-list: a search space may only name these params (plus the per-layer
form ``<name>_<i>`` of per-layer params), and only with values these rules accept.
Validating against it before any trial starts means no option is silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainables.registry import ACTIVATIONS, INITIALIZERS, OPTIMIZERS


@dataclass(frozen=True)
class ParamRule:
    """What values one hyperparameter accepts.

    Attributes:
        kind: ``int``, ``float``, ``bool`` or ``choice``.
        minimum / maximum: inclusive numeric bounds (``None`` = unbounded).
        below: exclusive upper bound, for rates that must stay under 1.
        choices: allowed names for ``choice`` params.
        per_layer: whether the param may be given one value per hidden layer.
        doc: one line for error messages and the README.
    """

    kind: str
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    below: float | None = None
    choices: tuple[str, ...] = ()
    per_layer: bool = False

    def allowed(self) -> str:
        """Human-readable description of the allowed values."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        parts = [f"an {self.kind}" if self.kind == "int" else f"a {self.kind}"]
        if self.minimum is not None:
            parts.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"<= {self.maximum:g}")
        if self.below is not None:
            parts.append(f"< {self.below:g}")
        return " ".join(parts)

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is valid for this param."""
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if self.kind == "bool":
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and int(value) != value:
            return False
        if self.minimum is not None and value < self.minimum:
            return False
        if self.maximum is not None and value > self.maximum:
            return False
        return not (self.below is not None and value >= self.below)


PARAMS: dict[str, ParamRule] = {
    "n_hidden": ParamRule("int", "number of hidden Dense layers", minimum=0, maximum=100),
    "n_neurons": ParamRule(
        "int", "units per hidden layer (per_layer allowed)", minimum=1, per_layer=True
    ),
    "activation": ParamRule("choice", "hidden-layer activation", choices=tuple(ACTIVATIONS)),
    "leaky_relu_alpha": ParamRule("float", "negative slope of leaky_relu", minimum=0),
    "initializer": ParamRule(
        "choice", "hidden-layer kernel initializer", choices=tuple(INITIALIZERS)
    ),
    "optimizer": ParamRule("choice", "optimizer", choices=tuple(OPTIMIZERS)),
    "learning_rate": ParamRule("float", "initial learning rate", minimum=1e-12),
    "momentum": ParamRule("float", "momentum of sgd (and rmsprop)", minimum=0, below=1),
    "nesterov": ParamRule("bool", "Nesterov momentum for sgd"),
    "weight_decay": ParamRule("float", "decoupled weight decay of adamw", minimum=0),
    "batch_size": ParamRule("int", "mini-batch size", minimum=1),
    "dropout": ParamRule("float", "dropout rate after each hidden layer", minimum=0, below=1),
    "l2": ParamRule("float", "l2 penalty on hidden-layer weights", minimum=0),
}


def layer_value(params: dict[str, Any], name: str, index: int, default: Any = None) -> Any:
    """Value of a per-layer param for hidden layer ``index``: ``name_<index>``, else ``name``."""
    return params.get(f"{name}_{index}", params.get(name, default))
