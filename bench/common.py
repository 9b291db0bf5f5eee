"""What every system in the benchmark shares: data splits, the seed's space, the anytime
log, the memory sampler and the final test evaluation."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

# Fashion-MNIST: fixed 55k / 5k / 10k (the split seed is part of the benchmark, not of
# the run seed, so every system and every seed sees the same split; dnn-sweep gets it as
# `dataset.split_seed`).
SPLIT_SEED = 0
DATASET = {"name": "fashion_mnist", "validation_size": 5000, "split_seed": SPLIT_SEED}
SHORT_DATASET = {
    "name": "fashion_mnist",
    "validation_size": 1000,
    "max_per_class": 300,
    "split_seed": SPLIT_SEED,
}


def load(short: bool):
    from trainables.data import load_dataset

    return load_dataset(SHORT_DATASET if short else DATASET, SPLIT_SEED)


def keras_tuner_model(hp: Any, input_dim: int = 784, scale: float = 255.0) -> Any:
    """The seed's Keras Tuner model (18AI81 course text): the space of
    conf/search_space/keras_tuner."""
    import keras

    n_hidden = hp.Int("n_hidden", min_value=0, max_value=8, default=2)
    n_neurons = hp.Int("n_neurons", min_value=16, max_value=256)
    learning_rate = hp.Float("learning_rate", min_value=1e-4, max_value=1e-2, sampling="log")
    optimizer = hp.Choice("optimizer", values=["sgd", "adam"])
    layers = [keras.Input(shape=(input_dim,)), keras.layers.Rescaling(1.0 / scale)]
    layers += [keras.layers.Dense(n_neurons, activation="relu") for _ in range(n_hidden)]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    opt = (keras.optimizers.SGD if optimizer == "sgd" else keras.optimizers.Adam)(learning_rate)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
    return model


class AnytimeLog:
    """Appends one JSON line per finished epoch: seconds since start, trial, val_accuracy;
    keeps the best model so far on disk for the final test evaluation."""

    def __init__(self, folder: Path, started: float) -> None:
        self.path = folder / "epochs.jsonl"
        self.best_path = folder / "best.keras"
        self.best_meta = folder / "best.json"  # its trial and epoch count (for the refit)
        self.started = started
        self.best = -1.0

    def record(self, trial: str, epoch: int, val_accuracy: float, model: Any = None) -> None:
        with self.path.open("a") as f:
            f.write(
                json.dumps(
                    {
                        "t": time.monotonic() - self.started,
                        "trial": trial,
                        "epoch": epoch,
                        "val_accuracy": val_accuracy,
                    }
                )
                + "\n"
            )
        if val_accuracy > self.best and model is not None:
            self.best = val_accuracy
            model.save(self.best_path)
            meta = {"trial": trial, "epoch": epoch, "val_accuracy": val_accuracy}
            self.best_meta.write_text(json.dumps(meta))


_TRIALS = {"n": 0}


def epoch_callback(log: AnytimeLog) -> Any:
    """A Keras callback logging every epoch. Keras Tuner deep-copies callbacks per
    trial, so the trial counter and the log live at module level, not in the copy."""
    import keras

    _TRIALS["log"] = log

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            _TRIALS["n"] += 1

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            _TRIALS["log"].record(
                f"t{_TRIALS['n']}", epoch + 1, float((logs or {})["val_accuracy"]), self.model
            )

    return Record()


@dataclass
class MemorySampler:
    """Peak RSS of a process tree (the benchmarked system and all its children)."""

    pid: int
    interval: float = 0.5
    peak_bytes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
                total = sum(_rss(p) for p in procs)
                self.peak_bytes = max(self.peak_bytes, total)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_bytes


def _rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.Error:  # exited between listing and reading
        return 0


def best_so_far(points: list[tuple[float, float]], at: float) -> float | None:
    """Best validation accuracy reached by time ``at`` (None when nothing yet)."""
    values = [v for t, v in points if t <= at]
    return max(values) if values else None


def evaluate_saved(path: Path, short: bool) -> float | None:
    """Test accuracy of a saved Keras model on the benchmark's test split."""
    if not path.exists():
        return None
    import keras
    import numpy as np

    import trainables.layers  # noqa: F401
    import trainables.schedules  # noqa: F401

    data = load(short)
    model = keras.saving.load_model(path)
    probs = model.predict(data.x_test, batch_size=2048, verbose=0)
    return float(np.mean(probs.argmax(axis=1) == data.y_test))


def cpu_count() -> int:
    return os.cpu_count() or 1
