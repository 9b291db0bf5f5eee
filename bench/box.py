"""The cluster in a box against the embedded defaults (issue 27): one sweep run twice in
one sitting, the same config and seed, 2 trials at a time:

- embedded: local Ray on this machine, MLflow in a SQLite file, Tune's storage and the
  study on the local disk (what `make sweep` uses);
- box: tests/box.py's parts on loopback: a Ray head and two worker nodes under token
  auth (the driver joins with ``cluster=remote``), Tune's storage and MLflow's artifacts
  on an S3 server, MLflow's store and the Optuna study in PostgreSQL, tracking through
  an MLflow server over http.

Each run's time is split by bench/breakdown.py (from its own MLflow records); the report
gives both and their ratios (box / embedded): per-trial start and hand-over, checkpoint
and report cost per epoch, orchestration efficiency, wall time.

    python -m bench box [--trials 12] [--max-epochs 6] [--out bench/results/box]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SLOTS = 2


def _sweep(work: Path, args: list[str], env: dict[str, str] | None = None) -> float:
    """Run `sweep ARGS` in ``work``; its wall time (it must succeed)."""
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "sweep"), *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    (work / "sweep.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return time.monotonic() - started


def _costs(b: dict[str, Any]) -> dict[str, float]:
    """The figures compared: per trial, per epoch, and the whole run."""
    trials, epochs = max(1, b["trials"]), max(1, b["epochs"])
    side = b["trial_side"]
    return {
        "wall_seconds": b["wall_seconds"],
        "startup_seconds": b["startup_seconds"],
        "trial_start_s": b["per_trial_start_s"],
        "handover_per_trial_s": b["worker_handover_s"] / trials,
        "epoch_gap_s": b["per_epoch_gap_s"],
        "checkpoint_per_epoch_s": side["checkpoint_seconds"] / epochs,
        "report_per_epoch_s": side["report_seconds"] / epochs,
        "orchestration_efficiency": b["busy_seconds"] / (b["slots"] * b["wall_seconds"]),
    }


def run(out: Path, trials: int, max_epochs: int) -> dict[str, Any]:
    from bench.breakdown import breakdown
    from tests.box import cluster_in_a_box

    common = [
        "dataset=digits",
        "search_space=keras_tuner",
        f"trials={trials}",
        f"max_epochs={max_epochs}",
        f"max_concurrent={SLOTS}",
        "scheduler=fifo",
        "seed=0",
        "time_budget_s=null",
    ]
    local = out / "embedded"
    wall = _sweep(local, [*common, "name=embedded", "tracking.uri=sqlite:///mlflow.db"])
    found = {"embedded": breakdown(local / "mlflow.db", "embedded", SLOTS, wall)}
    with cluster_in_a_box(out / "box-parts") as box:
        wall = _sweep(out / "box", [*common, *box.sweep_args("box")], box.env())
        found["box"] = breakdown(box.tracking_uri, "box", SLOTS, wall)
    costs = {name: _costs(b) for name, b in found.items()}
    ratios = {k: _ratio(costs["box"][k], costs["embedded"][k]) for k in costs["box"]}
    result = {"trials": trials, "max_epochs": max_epochs, "slots": SLOTS, **costs}
    result["ratio_box_to_embedded"] = ratios
    result["breakdown"] = found
    (out / "box.json").write_text(json.dumps(result, indent=2))
    return result


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def report(result: dict[str, Any]) -> str:
    rows = ["| figure | embedded | box | box / embedded |", "|---|---|---|---|"]
    for key, ratio in result["ratio_box_to_embedded"].items():
        rows.append(
            f"| {key} | {result['embedded'][key]:.3g} | {result['box'][key]:.3g} | {ratio} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench box", description=__doc__)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("bench/results/box"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(report(run(args.out.resolve(), args.trials, args.max_epochs)))


if __name__ == "__main__":
    main()
