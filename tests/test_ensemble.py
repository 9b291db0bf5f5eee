"""Greedy ensemble selection and the averaged model (``ensemble.size`` > 1)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import trial_runs
from trainables.ensemble import average_model, greedy_selection, members_of
from trainables.evaluate import ranking
from trainables.task import Objective, Task

Y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
TASK = Task("multiclass", ("0", "1", "2"))
KEY = ranking(TASK, Objective("val_accuracy", "max"), Y)


def accuracy(chosen) -> float:
    return chosen.score[0]


def _model(right: set[int], confidence: float = 0.9) -> np.ndarray:
    """Class probabilities over Y's 3 classes: confident where ``right``, and hesitantly
    wrong elsewhere (0.45 on the next class, 0.35 on the true one)."""
    p = np.zeros((len(Y), 3))
    for i, y in enumerate(Y):
        if i in right:
            p[i] = (1 - confidence) / 2
            p[i, y] = confidence
        else:
            p[i] = 0.2
            p[i, (y + 1) % 3], p[i, y] = 0.45, 0.35
    return p


def test_complementary_models_beat_the_best_alone():
    a = _model({0, 1, 2, 3, 4, 5})
    b = _model({3, 4, 5, 6, 7})
    c = _model({0, 1, 2})
    chosen = greedy_selection([a, b, c], KEY, size=5)
    assert chosen.members[0] == 0 and 1 in chosen.members
    assert accuracy(chosen) == 1.0 > float(np.mean(a.argmax(1) == Y)) == 0.75
    assert sum(chosen.weights) == pytest.approx(1.0)
    assert len(chosen.weights) == len(chosen.members)


def test_no_gain_keeps_the_best_model_alone():
    perfect = _model(set(range(8)))
    worse = _model({0, 1, 2, 3, 4, 5})
    chosen = greedy_selection([perfect, worse], KEY, size=6)
    assert chosen.members == (0,) and chosen.weights == (1.0,)
    single = greedy_selection([worse, perfect], KEY, size=1)
    assert single.members == (0,) and accuracy(single) == 0.75


def test_picks_with_replacement_become_weights():
    a = _model({0, 1, 2, 3, 4, 5}, 0.9)
    b = _model({2, 3, 4, 5, 6, 7}, 0.5)
    chosen = greedy_selection([a, b], KEY, size=10)
    assert accuracy(chosen) == 1.0 and chosen.members == (0, 1)
    assert len(chosen.weights) == 2 and sum(chosen.weights) == pytest.approx(1.0)
    # the weights are counts of picks (with replacement) over at most 10 picks
    assert any(
        all(w * n == pytest.approx(round(w * n)) for w in chosen.weights) for n in range(1, 11)
    )


def test_average_model_is_the_weighted_mean_and_survives_save(tmp_path):
    import keras

    def member(seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        return keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(6), keras.layers.Dense(3, activation="softmax")]
        )

    for i in range(2):
        member(i).save(tmp_path / f"m{i}.keras")
    models = [keras.saving.load_model(tmp_path / f"m{i}.keras") for i in range(2)]
    x = np.random.default_rng(0).random((9, 4)).astype("float32")
    expected = 0.3 * models[0].predict(x, verbose=0) + 0.7 * models[1].predict(x, verbose=0)
    ensemble = average_model(models, [0.3, 0.7])
    np.testing.assert_allclose(ensemble.predict(x, verbose=0), expected, rtol=1e-5)
    ensemble.save(tmp_path / "e.keras")
    loaded = keras.saving.load_model(tmp_path / "e.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5)
    assert [round(w, 6) for _, w in members_of(loaded)] == [0.3, 0.7]
    assert members_of(models[0]) == [(models[0], 1.0)]
    assert average_model(models[:1], [1.0]) is models[0]


@pytest.mark.slow
@pytest.mark.usefixtures("shared_ray")
def test_sweep_registers_the_ensemble_it_logs(tmp_path):
    """A digits sweep with ensemble.size=5: the registered model is the logged ensemble,
    and its logged validation and test accuracies are what it scores."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from dnn_sweep import run_sweep
    from search.summary import format_summary
    from trainables.data import load_dataset

    summary = run_sweep(
        [
            "dataset=digits",
            "search_space=keras_tuner",
            "search_space.params.optimizer=adam",  # every trial learns in 3 epochs: a real pool
            "trials=6",
            "max_epochs=3",
            "max_concurrent=2",
            "scheduler=fifo",
            "seed=0",
            "name=ens",
            "ensemble.size=5",
            "ensemble.candidates=6",
            f"tracking.uri=sqlite:///{tmp_path / 'ens.db'}",
            f"ray.storage_path={tmp_path / 'ray_results'}",
        ],
        echo=lambda line: None,
    )
    stdout = format_summary(summary)  # what `sweep` prints at the end

    (parent,), _ = trial_runs(MlflowClient(f"sqlite:///{tmp_path / 'ens.db'}"), "ens")
    metrics, tags = parent.data.metrics, parent.data.tags
    members = [m.rsplit(":", 1) for m in tags["ensemble.members"].split(",")]
    assert len(members) == metrics["ensemble_members"] >= 2, stdout
    assert sum(float(w) for _, w in members) == pytest.approx(1.0, abs=1e-2)
    assert metrics["ensemble_val_accuracy"] >= metrics["best_val_accuracy"] - 1e-9
    assert "Registered an ensemble of" in stdout

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'ens.db'}")
    served = mlflow.pyfunc.load_model("models:/ens/1")  # the registered SavedModel
    data = load_dataset({"name": "digits", "test_size": 360, "validation_size": 288}, seed=0)
    val = np.asarray(served.predict(data.x_val.astype("float32"))).argmax(axis=1)
    test = np.asarray(served.predict(data.x_test.astype("float32"))).argmax(axis=1)
    assert float(np.mean(val == data.y_val)) == pytest.approx(metrics["ensemble_val_accuracy"])
    assert float(np.mean(test == data.y_test)) == pytest.approx(metrics["test_accuracy"])
