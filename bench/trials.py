"""`python -m bench trials DIR`: what each system did with its budget, trial by trial,
from a `python -m bench` output folder: when each trial started, how many epochs it
trained, its best validation accuracy and when it reached it, and (for dnn-sweep)
whether the scheduler cut it. Used to find out why one system led another in a seed
(which configs won, how long the eventual best ran before they were judged, what the
searcher sampled while its model was still random)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Trial:
    name: str
    started: float  # seconds since the system's launch
    epochs: int
    best: float
    best_at: float  # seconds since launch of its best epoch
    params: dict[str, Any]
    status: str = ""
    points: list[tuple[float, float]] = field(default_factory=list)  # (seconds, val) per epoch
    epoch_9_at: float | None = None  # seconds since launch of its epoch 9, if it got there


# A trial past this epoch ran (nearly) the whole 10-epoch cap of the benchmark.
LATE_EPOCH = 9


def _first(times: Any) -> float | None:
    return min(times, default=None)


def dnn_sweep_trials(folder: Path, seed: int, first_point: float) -> list[Trial]:
    """dnn-sweep's trials from its MLflow records (timestamps of each epoch's metric);
    ``first_point``: the bench's time of the earliest epoch, which places its launch."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name(f"bench-{seed}")
    runs = client.search_runs(
        [exp.experiment_id], filter_string="tags.`sweep.role` = 'trial'", max_results=50000
    )
    histories = {
        r.info.run_id: client.get_metric_history(r.info.run_id, "val_accuracy") for r in runs
    }
    launched = min(m.timestamp for h in histories.values() for m in h) / 1000 - first_point
    trials = []
    for run in runs:
        history = histories[run.info.run_id]
        if not history:
            continue
        top = max(history, key=lambda m: m.value)
        params = {
            k: run.data.params[k]
            for k in ("n_hidden", "n_neurons", "learning_rate", "optimizer")
            if k in run.data.params
        }
        trials.append(
            Trial(
                run.info.run_name,
                run.info.start_time / 1000 - launched,
                len(history),
                top.value,
                top.timestamp / 1000 - launched,
                params,
                run.data.tags.get("trial_status", ""),
                [(m.timestamp / 1000 - launched, m.value) for m in history],
                _first(m.timestamp / 1000 - launched for m in history if m.step >= LATE_EPOCH),
            )
        )
    return sorted(trials, key=lambda t: t.started)


def keras_tuner_trials(folder: Path) -> list[Trial]:
    """A Keras Tuner peer's trials: times from the harness's epoch log, params from the
    tuner's trial records (its N-th fit is its N-th trial)."""
    rows = [json.loads(line) for line in (folder / "epochs.jsonl").read_text().splitlines()]
    records = sorted((folder / "kt").glob("*/trial_*/trial.json"))
    by_trial: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_trial.setdefault(r["trial"], []).append(r)
    trials = []
    for name, epochs in by_trial.items():
        index = int(name[1:]) - 1
        values = (
            json.loads(records[index].read_text())["hyperparameters"]["values"]
            if index < len(records)
            else {}
        )
        top = max(epochs, key=lambda r: r["val_accuracy"])
        trials.append(
            Trial(
                name,
                epochs[0]["t"],
                len(epochs),
                top["val_accuracy"],
                top["t"],
                values,
                f"epochs {epochs[0]['epoch']}-{epochs[-1]['epoch']}",
                [(r["t"], r["val_accuracy"]) for r in epochs],
                _first(r["t"] for r in epochs if r["epoch"] >= LATE_EPOCH),
            )
        )
    return sorted(trials, key=lambda t: t.started)


def summary(trials: list[Trial], budget: float) -> dict[str, Any]:
    def by(t_max: float) -> dict[str, Any]:
        seen = [t for t in trials if t.started <= t_max]
        late = [t for t in seen if t.epoch_9_at is not None and t.epoch_9_at <= t_max]
        return {
            "trials_started": len(seen),
            f"trials_past_epoch_{LATE_EPOCH}": len(late),
            "best": max((v for t in trials for at, v in t.points if at <= t_max), default=None),
        }

    return {
        "at_half": by(budget / 2),
        "at_budget": by(budget),
        "median_epochs_per_trial": statistics.median(t.epochs for t in trials) if trials else 0,
    }


def table(trials: list[Trial], top: int = 8) -> str:
    ranked = sorted(trials, key=lambda t: -t.best)[:top]
    lines = ["| trial | started s | epochs | best val | at s | status | params |", "|---" * 7 + "|"]
    for t in ranked:
        params = " ".join(
            f"{k}={v:.2g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in t.params.items()
            if not k.startswith("tuner/")
        )
        lines.append(
            f"| {t.name} | {t.started:.0f} | {t.epochs} | {t.best:.4f} | {t.best_at:.0f} "
            f"| {t.status} | {params} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    folder = Path(argv[0])
    rows = json.loads((folder / "results.json").read_text())
    results = {(r["system"], r["seed"]): r for r in rows}
    for (system, seed), r in results.items():
        out = folder / f"{system}-{seed}"
        if system == "dnn_sweep":
            trials = dnn_sweep_trials(out, seed, min(t for t, _ in r["points"]))
        elif system.startswith("kt_"):
            trials = keras_tuner_trials(out)
        else:
            continue
        print(f"## {system}, seed {seed}")
        print(json.dumps(summary(trials, r["budget_seconds"]), indent=1))
        print(table(trials))
        print()
