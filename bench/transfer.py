"""`python -m bench transfer`: what the frozen-layer cache saves (transfer.cache).

HOML 1e ch. 11, exercise 9c: "cache the frozen layers and retrain: how much faster is
it?". On Fashion-MNIST: a source model (5 hidden layers, He, ELU, Adam) trained on
classes 0-4, then the same transfer trial on classes 5-9 (all 5 hidden layers reused and
frozen, a new output layer), once with the cache and once without, same params and seed:
sources of the exercise's 100 units per layer and of 512 (the widest of the default
`mlp` space), with the exercise's 100 training images per class and with all of them
(about 5,500 per class). Both runs use the sweep's default `trial.steps_per_execution`.
Reported: the median epoch time of each (the first epoch left out: it
includes tracing, and with the cache the one-time pass), their ratio, and the largest
difference in validation accuracy between the two runs, epoch by epoch.

    python -m bench transfer [--seeds 0,1,2] [--short]
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

SOURCE = {
    "n_hidden": 5,
    "n_neurons": 100,
    "initializer": "he_normal",
    "activation": "elu",
    "optimizer": "adam",
    "learning_rate": 1e-3,
}
TRIAL = {**SOURCE, "n_hidden": 0, "freeze_epochs": 100, "batch_size": 32, "learning_rate": 1e-2}
PER_CLASS = (100, None)  # the exercise's 100 images per class; all of them
WIDTHS = (100, 512)  # units per source layer: the exercise's; the mlp space's widest


def _default_steps_per_execution() -> int:
    from search.schema import Trial

    return Trial().steps_per_execution


STEPS_PER_EXECUTION = _default_steps_per_execution()  # what a sweep's trials run with


def _source(seed: int, epochs: int, width: int) -> bytes:
    """Model A: trained on classes 0-4, saved as .keras."""
    from trainables.data import load_dataset
    from trainables.task import Objective
    from trainables.train import train

    data = load_dataset({"name": "fashion_mnist", "classes": [0, 1, 2, 3, 4]}, seed)
    kept: list[Any] = []
    train(
        {**SOURCE, "n_neurons": width},
        data,
        max_epochs=epochs,
        on_epoch_end=lambda e, m, model, last: kept.append(model) if last else None,
        objective=Objective("val_accuracy", "max"),
        seed=seed,
    )
    with tempfile.TemporaryDirectory(prefix="dnn-sweep-bench-") as tmp:
        path = Path(tmp) / f"source-{seed}-{width}.keras"
        kept[-1].save(path)
        return path.read_bytes()


def _trial(
    saved: bytes, seed: int, epochs: int, cache: bool, per_class: int | None, width: int
) -> list[dict[str, float]]:
    from trainables.data import load_dataset
    from trainables.task import Objective
    from trainables.train import train
    from trainables.transfer import loader

    options = {"name": "fashion_mnist", "classes": [5, 6, 7, 8, 9], "max_per_class": per_class}
    data = load_dataset(options, seed)
    curve: list[dict[str, float]] = []
    train(
        {**TRIAL, "n_neurons": width},
        data,
        max_epochs=epochs,
        on_epoch_end=lambda e, m, model, last: curve.append(m),
        objective=Objective("val_accuracy", "max"),
        seed=seed,
        source=loader(saved),
        cache=cache,
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    return curve


def _row(seed: int, per_class: int | None, on: list[dict], off: list[dict]) -> dict[str, Any]:
    t_on = statistics.median(m["epoch_seconds"] for m in on[1:])
    t_off = statistics.median(m["epoch_seconds"] for m in off[1:])
    return {
        "seed": seed,
        "images_per_class": per_class or "all",
        "epoch_seconds_cached": t_on,
        "epoch_seconds_uncached": t_off,
        "speedup": t_off / t_on,
        "max_val_accuracy_gap": max(
            abs(a["val_accuracy"] - b["val_accuracy"]) for a, b in zip(on, off, strict=True)
        ),
        "best_val_accuracy_cached": max(m["val_accuracy"] for m in on),
        "best_val_accuracy_uncached": max(m["val_accuracy"] for m in off),
    }


def run(out: Path, seeds: list[int], short: bool = False) -> str:
    """Each seed's cached and uncached runs; results.json and results.md in ``out``."""
    from trainables.train import configure_threads

    configure_threads(2)
    epochs, source_epochs = (3, 1) if short else (10, 3)
    rows = []
    for seed in seeds:
        for width in WIDTHS:
            saved = _source(seed, source_epochs, width)
            for per_class in PER_CLASS:
                on = _trial(saved, seed, epochs, True, per_class, width)
                off = _trial(saved, seed, epochs, False, per_class, width)
                rows.append({"source": f"5 x {width}", **_row(seed, per_class, on, off)})
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    lines = [
        f"Frozen-layer cache, Fashion-MNIST classes 5-9, {epochs} epochs, the source's 5 "
        "hidden layers reused and frozen + a new output layer, batch 32, 2 CPU threads, "
        f"steps_per_execution {STEPS_PER_EXECUTION}.",
        "",
        "| seed | source | images per class | epoch s, cached | epoch s, not cached "
        "| speed-up | max val acc gap | best val acc (cached / not) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['source']} | {r['images_per_class']} "
            f"| {r['epoch_seconds_cached']:.3f} "
            f"| {r['epoch_seconds_uncached']:.3f} "
            f"| {r['speedup']:.2f}x | {r['max_val_accuracy_gap']:.4f} "
            f"| {r['best_val_accuracy_cached']:.4f} / {r['best_val_accuracy_uncached']:.4f} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    return text
