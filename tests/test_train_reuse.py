"""A reused worker must not grow: each trial's traced graphs are freed with its model."""

from __future__ import annotations

import gc

import pytest


@pytest.mark.slow
def test_repeated_training_frees_each_runs_graphs():
    from tensorflow.python.framework import func_graph, ops

    from trainables.data import load_dataset
    from trainables.task import Objective
    from trainables.train import train

    data = load_dataset({"name": "digits", "validation_size": 200, "test_size": 200}, 0)

    def run() -> None:
        train(
            {"n_hidden": 2, "n_neurons": 16},
            data,
            max_epochs=1,
            on_epoch_end=lambda *a: None,
            objective=Objective("val_accuracy", "max"),
        )

    def graphs() -> int:
        gc.collect()
        return sum(isinstance(o, func_graph.FuncGraph) for o in gc.get_objects())

    def custom_gradients() -> int:
        return sum(k.startswith("CustomGradient-") for k in ops.gradient_registry._registry)

    run()
    base_graphs, base_gradients = graphs(), custom_gradients()
    for _ in range(3):
        run()
    assert custom_gradients() == base_gradients
    assert graphs() <= base_graphs
