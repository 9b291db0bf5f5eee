"""The private APIs of TensorFlow and Keras that dnn-sweep uses, with why.

Each is reached only through the functions here. ``tests/test_private_apis.py`` is the
one list of every private part of a library the project relies on (these, and Ray's
``ray_current_cluster`` file), each with a test that fails by name when an upgrade
breaks it, instead of a sweep failing at run time.

- ``tensorflow.python.framework.ops.gradient_registry._registry``: Keras' traced train
  step registers ``tf.custom_gradient`` functions there (from ``tf.distribute``'s
  ``all_reduce``) that keep the trace's FuncGraph alive; TensorFlow has no public way to
  unregister them, and a reused Ray worker grew ~11.7k objects per trial without it
  (see ``trainables.train``).
- ``keras.optimizers.Optimizer._get_variable_index``: the slot index of a variable, the
  accessor Keras' own optimizers use in ``update_step``; our SGD with a momentum schedule
  (1cycle) overrides ``update_step`` and needs the same slot (see ``trainables.layers``).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def gradient_registry() -> MutableMapping[str, Any]:
    """TensorFlow's global registry of gradient functions, by op-type name."""
    from tensorflow.python.framework import ops

    return ops.gradient_registry._registry


def custom_gradients() -> set[str]:
    """The names of the ``tf.custom_gradient`` functions registered so far."""
    return {k for k in gradient_registry() if k.startswith(CUSTOM_GRADIENT_PREFIX)}


def forget_custom_gradients(before: set[str]) -> None:
    """Unregister the ``tf.custom_gradient`` functions registered since ``before``."""
    registry = gradient_registry()
    for key in custom_gradients() - before:
        registry.pop(key, None)


def variable_index(optimizer: Any, variable: Any) -> int:
    """The index of ``variable``'s slots in ``optimizer``'s slot lists."""
    return optimizer._get_variable_index(variable)
