"""A trainable for fault tests: the real one, except for two poisoned configurations.

n_neurons == 17 raises before training; n_neurons == 19 trains with a learning rate so
large that the loss really turns NaN/inf (the real divergence check fails the trial).
"""

from __future__ import annotations

from typing import Any

from search.tune_trial import TrialOptions, run_trial


def faulty_trial(config: dict[str, Any], data: Any, settings: TrialOptions) -> None:
    if config.get("n_neurons") == 17:
        raise RuntimeError("injected failure for n_neurons=17")
    if config.get("n_neurons") == 19:
        config = {**config, "optimizer": "sgd", "learning_rate": 1e20}
    run_trial(config, data, settings)
