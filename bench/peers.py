"""The peers, each run in its own process: `python -m bench.peers SYSTEM --out DIR ...`.

The parent (bench/__main__.py) stops the process when the wall-clock budget is spent;
everything a peer achieved by then is in DIR/epochs.jsonl and DIR/best.keras.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import AnytimeLog, epoch_callback, keras_tuner_model, load


def run_keras_tuner(kind: str, data, log: AnytimeLog | None, args) -> None:
    """``log`` None: the tuner alone, as its users run it (no callback of ours); what it
    did is then read from its own trial records (``kt_epochs``)."""
    import keras_tuner as kt

    common = {
        "objective": "val_accuracy",
        "seed": args.seed,
        "overwrite": True,
        "directory": str(args.out / "kt"),
        "project_name": kind,
    }
    if kind == "kt_random":
        tuner = kt.RandomSearch(keras_tuner_model, max_trials=100000, **common)
    elif kind == "kt_hyperband":
        tuner = kt.Hyperband(
            keras_tuner_model,
            max_epochs=args.max_epochs,
            factor=3,
            hyperband_iterations=1000,
            **common,
        )
    else:
        tuner = kt.BayesianOptimization(keras_tuner_model, max_trials=100000, **common)
    tuner.search(
        data.x_train,
        data.y_train,
        epochs=args.max_epochs,
        validation_data=(data.x_val, data.y_val),
        callbacks=[epoch_callback(log)] if log is not None else [],
        verbose=0,
    )


def kt_epochs(out: Path, max_epochs: int) -> dict[str, float | int]:
    """Completed trials, their epochs and the best val_accuracy, from Keras Tuner's own
    records (trial.json: status, hyperparameters and the best epoch's metrics). A
    Hyperband trial trains epochs ``tuner/initial_epoch`` to ``tuner/epochs``; the other
    tuners train ``max_epochs``. The trial running when the budget ended is not counted."""
    import json

    trials, epochs, best = 0, 0, 0.0
    for path in (out / "kt").glob("*/trial_*/trial.json"):
        record = json.loads(path.read_text())
        if record.get("status") != "COMPLETED":
            continue
        values = record["hyperparameters"]["values"]
        trials += 1
        epochs += values.get("tuner/epochs", max_epochs) - values.get("tuner/initial_epoch", 0)
        history = record["metrics"]["metrics"].get("val_accuracy", {}).get("observations", [])
        best = max([best, *(max(o["value"]) for o in history)])
    return {"trials": trials, "epochs": epochs, "best_val_accuracy": best}


def run_optuna(data, log: AnytimeLog, args) -> None:
    import keras
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    class Hp:
        """Adapts an Optuna trial to the keras-tuner-style builder (same space)."""

        def __init__(self, trial):
            self.trial = trial

        def Int(self, name, min_value, max_value, default=None):  # noqa: N802
            return self.trial.suggest_int(name, min_value, max_value)

        def Float(self, name, min_value, max_value, sampling=None):  # noqa: N802
            return self.trial.suggest_float(name, min_value, max_value, log=sampling == "log")

        def Choice(self, name, values):  # noqa: N802
            return self.trial.suggest_categorical(name, values)

    def objective(trial):
        keras.backend.clear_session()
        model = keras_tuner_model(Hp(trial))
        best = 0.0
        for epoch in range(args.max_epochs):
            hist = model.fit(
                data.x_train,
                data.y_train,
                epochs=1,
                verbose=0,
                validation_data=(data.x_val, data.y_val),
            )
            val = float(hist.history["val_accuracy"][-1])
            log.record(f"t{trial.number}", epoch + 1, val, model)
            best = max(best, val)
            trial.report(val, epoch + 1)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return best

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=args.max_epochs, reduction_factor=3
        ),
    )
    study.optimize(objective, timeout=args.budget)


def refit(out: Path, seed: int, short: bool) -> dict[str, float | int | None]:
    """The peer's own final step, as the seed's workflow does it: the best config
    (the best model's architecture, optimizer and learning rate, as saved) trained
    afresh on training + validation data for its best epoch count, then tested once.
    Run after the search was stopped; its time is reported, not taken from the budget."""
    import json
    import time

    import keras
    import numpy as np

    import trainables.layers  # noqa: F401
    import trainables.schedules  # noqa: F401

    if not (out / "best.keras").exists():
        return {"refit_test_accuracy": None}
    started = time.monotonic()
    data = load(short)
    best = keras.saving.load_model(out / "best.keras")
    epochs = int(json.loads((out / "best.json").read_text())["epoch"])
    keras.utils.set_random_seed(seed + 1)  # a fresh seed
    model = keras.models.clone_model(best)  # fresh weights, same layers
    optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(best.optimizer))
    model.compile(loss=best.loss, optimizer=optimizer, metrics=["accuracy"])
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    probs = model.predict(data.x_test, batch_size=2048, verbose=0)
    return {
        "refit_test_accuracy": float(np.mean(probs.argmax(axis=1) == data.y_test)),
        "refit_epochs": epochs,
        "refit_seconds": time.monotonic() - started,
    }


def main() -> None:
    import sys

    if sys.argv[1:2] == ["refit"]:  # python -m bench.peers refit OUT SEED [--short]
        import json

        out, seed = Path(sys.argv[2]), int(sys.argv[3])
        result = refit(out, seed, "--short" in sys.argv)
        (out / "refit.json").write_text(json.dumps(result))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=["kt_random", "kt_hyperband", "kt_bayesian", "optuna"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--started", type=float, required=True)
    parser.add_argument(
        "--standalone", action="store_true", help="the tuner alone: no epoch log, no best model"
    )
    args = parser.parse_args()
    if args.standalone and args.system == "optuna":
        parser.error("--standalone: Keras Tuner systems only (their trials record themselves)")
    args.out.mkdir(parents=True, exist_ok=True)
    import keras

    keras.utils.set_random_seed(args.seed)
    data = load(args.short)
    # `started` is the parent's monotonic clock at launch: start-up counts against the budget
    log = None if args.standalone else AnytimeLog(args.out, started=args.started)
    if args.system == "optuna":
        run_optuna(data, log, args)
    else:
        run_keras_tuner(args.system, data, log, args)


if __name__ == "__main__":
    main()
