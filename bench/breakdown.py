"""Where a dnn-sweep run's wall time went, from its own MLflow records.

Each trial's child run starts when the driver sees the trial start, and every epoch's
metrics carry the driver's timestamp plus the ``epoch_seconds`` the trial measured
around its fit. So, per slot-second of the sweep:

- ``training``     Σ epoch_seconds (fit + validation): the useful work;
- ``trial_start``  child-run start -> first epoch's report, minus that epoch's training
  (worker set-up or reuse, TensorFlow threads, model build, data fetch);
- ``between_epochs`` report-to-report gaps beyond the epoch's training (checkpoint,
  the synchronous report, driver-side logging);
- ``idle``         the rest: Ray/TF start-up before the first trial, slots with no
  trial (scheduling, trials ending), the driver's final evaluation and model logging.

``python -m bench.breakdown FOLDER`` prints it for a benchmark or scaling folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def breakdown(
    db: Path | str, experiment: str, slots: int, wall: float | None = None
) -> dict[str, Any]:
    """``db``: a run's SQLite file, or the tracking URI its records are at."""
    from mlflow.tracking import MlflowClient

    from tracking.runs import newest_sweep_runs

    client = MlflowClient(db if isinstance(db, str) else f"sqlite:///{db}")
    parent, kids = newest_sweep_runs(client, experiment)
    training, trial_start, between, costs, handover = _inside_trials(client, kids)
    first_trial = min((k.info.start_time for k in kids), default=parent.info.start_time)
    last_end = max((k.info.end_time or 0 for k in kids), default=first_trial)
    end = parent.info.end_time or max(k.info.end_time or 0 for k in kids)
    if wall is None:
        wall = (end - parent.info.start_time) / 1000
    total = slots * wall
    parts = {
        "training": training,
        "trial_start": trial_start,
        "between_epochs": between,
        "idle": total - training - trial_start - between,
    }
    epochs = sum(len(client.get_metric_history(k.info.run_id, "epoch_seconds")) for k in kids)
    return {
        "wall_seconds": wall,
        "slots": slots,
        "trials": len(kids),
        "epochs": epochs,
        "startup_seconds": (first_trial - parent.info.start_time) / 1000,
        # first trial start -> last trial end: the steady state, without Ray start-up
        # and the final evaluation
        "trials_window_seconds": (last_end - first_trial) / 1000,
        "busy_seconds": training,
        "slot_seconds": {k: round(v, 1) for k, v in parts.items()},
        "share": {k: round(v / total, 3) for k, v in parts.items()},
        "per_trial_start_s": trial_start / max(1, len(kids)),
        "per_epoch_gap_s": between / max(1, epochs - len(kids)),
        # measured inside the trials (sums over all trials, seconds)
        "trial_side": {k: round(v, 1) for k, v in costs.items()},
        "worker_handover_s": round(handover, 1),
        # the driver process' CPU while the trials ran (Tune, searcher, scheduler, MLflow)
        "driver_cpu_seconds": parent.data.metrics.get("driver_cpu_seconds"),
    }


def _inside_trials(client: Any, kids: list[Any]) -> tuple[float, float, float, dict, float]:
    """Per trial, in the order the workers entered them: training, trial start, gaps
    between epochs, the trials' own cost metrics, and worker hand-over."""
    training = trial_start = between = 0.0
    costs = {"setup_seconds": 0.0, "checkpoint_seconds": 0.0, "report_seconds": 0.0}
    handover, last_end = 0.0, {}
    for kid in sorted(kids, key=lambda k: float(k.data.tags.get("entered_at", 0))):
        for name in costs:
            costs[name] += sum(m.value for m in client.get_metric_history(kid.info.run_id, name))
        seconds = client.get_metric_history(kid.info.run_id, "epoch_seconds")
        if not seconds:
            continue
        seconds.sort(key=lambda m: m.step)
        stamps = [m.timestamp / 1000 for m in seconds]
        training += sum(m.value for m in seconds)
        trial_start += max(0.0, stamps[0] - kid.info.start_time / 1000 - seconds[0].value)
        for prev, cur, m in zip(stamps, stamps[1:], seconds[1:], strict=False):
            between += max(0.0, cur - prev - m.value)
        pid = kid.data.tags.get("worker_pid")
        if pid and "entered_at" in kid.data.tags:
            if pid in last_end:  # the worker's previous trial ended -> this one entered
                handover += max(0.0, float(kid.data.tags["entered_at"]) - last_end[pid])
            last_end[pid] = (kid.info.end_time or 0) / 1000
    return training, trial_start, between, costs, handover


def format_breakdown(b: dict[str, Any]) -> str:
    share = ", ".join(f"{k} {v:.1%}" for k, v in b["share"].items())
    return (
        f"{b['trials']} trials, {b['epochs']} epochs in {b['wall_seconds']:.0f} s x "
        f"{b['slots']} slots: {share}; start-up before the first trial "
        f"{b['startup_seconds']:.1f} s, per trial start {b['per_trial_start_s']:.2f} s, "
        f"per epoch gap {b['per_epoch_gap_s']:.2f} s; inside trials {b['trial_side']}, "
        f"worker hand-over between trials {b['worker_handover_s']} s"
    )


def main(argv: list[str] | None = None) -> None:
    from bench.common import cpu_count

    for folder in map(Path, argv if argv is not None else sys.argv[1:]):
        db = folder / "mlflow.db"
        from mlflow.tracking import MlflowClient

        names = [e.name for e in MlflowClient(f"sqlite:///{db}").search_experiments()]
        for name in (n for n in names if n != "Default"):
            print(f"{folder} [{name}]: {format_breakdown(breakdown(db, name, cpu_count()))}")


if __name__ == "__main__":
    main()
