"""`python -m bench`: dnn-sweep vs the peers, one after another, same data, space,
epoch cap and wall-clock budget; JSON + Markdown table + PNG of the anytime curves.

    python -m bench                      # 10-minute budget per system, seed 0
    python -m bench --seeds 0,1,2        # medians over seeds
    python -m bench --short              # smoke run: small data, 60 s budgets
    python -m bench scaling              # driver overhead per trial, 16 -> 64 -> 256 trials
    python -m bench tabular --budget-min 3 --seeds 0,1,2   # a table: vs gradient boosting
    python -m bench streaming            # in memory vs streamed through Ray Data
    python -m bench transfer --seeds 0,1,2   # the frozen-layer cache: epoch times, on vs off
    python -m bench final --seeds 0,1,2  # which final model: checkpoint, ensemble, refit, re-check
    python -m bench merge A/results.json B/results.json --out DIR   # one report of several runs
    python -m bench rate --systems kt_hyperband --seeds 1   # a peer's epochs: harness vs alone
    python -m bench trials DIR           # trial by trial: what each system did with its budget
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import ours
from bench.breakdown import breakdown
from bench.common import MemorySampler, best_so_far, cpu_count, evaluate_saved

SYSTEMS = ["dnn_sweep", "kt_random", "kt_hyperband", "kt_bayesian", "optuna"]


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """Let a process finish within ``grace`` seconds, then end its whole process group."""
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=15)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue


def start_peer(
    system: str,
    out: Path,
    budget: float,
    seed: int,
    max_epochs: int,
    short: bool,
    started: float,
    *extra: str,
) -> subprocess.Popen:
    """A peer in a process (group) of its own; ``started``: the launch on the monotonic
    clock, so its start-up counts against the budget."""
    cmd = [
        sys.executable,
        "-m",
        "bench.peers",
        system,
        "--out",
        str(out),
        "--budget",
        str(budget),
        "--seed",
        str(seed),
        "--max-epochs",
        str(max_epochs),
        "--started",
        str(started),
        *extra,
    ] + (["--short"] if short else [])
    log = open(out / "peer.log", "w")  # noqa: SIM115 - owned by the process
    return subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def run_system(
    system: str, out: Path, budget: float, seed: int, max_epochs: int, short: bool
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    started, started_wall = time.monotonic(), time.time()
    if system == "dnn_sweep":
        proc = ours.run(out, budget, seed, max_epochs, short)
        grace = budget + 180  # its own budget stops it; then it evaluates and logs the best
    else:
        proc = start_peer(system, out, budget, seed, max_epochs, short, started)
        grace = budget
    sampler = MemorySampler(proc.pid)
    _stop(proc, grace)
    wall = time.monotonic() - started
    peak = sampler.stop()
    if system == "dnn_sweep":
        result = _ours_result(out, seed, started_wall, wall, budget)
    else:
        result = _peer_result(out, seed, short)
    # each system's final model under its own workflow: ours registered (its final
    # phase inside the budget), a peer's best config refit as the seed does
    result["own_workflow_test_accuracy"] = result.get(
        "refit_test_accuracy", result.get("test_accuracy")
    )
    points = result["points"]
    result.update(
        {
            "system": system,
            "seed": seed,
            "budget_seconds": budget,
            "wall_seconds": wall,
            "peak_rss_mb": peak / 2**20,
            "best_val_accuracy": max((v for _, v in points), default=None),
            "best_at_half": best_so_far(points, budget / 2),
            "best_at_budget": best_so_far(points, budget),
        }
    )
    return result


def _ours_result(
    out: Path, seed: int, started_wall: float, wall: float, budget: float
) -> dict[str, Any]:
    """dnn-sweep's figures from its MLflow records, with where its wall time went."""
    result = ours.collect(out, seed, started_wall)
    result["breakdown"] = breakdown(out / "mlflow.db", f"bench-{seed}", cpu_count(), wall)
    # in the trials, before their first epoch (model build...), summed over trials
    result["setup_seconds"] = result["breakdown"]["trial_side"]["setup_seconds"]
    slot_seconds = cpu_count() * min(wall, budget)
    # busy = the trials' own work: building their model, training, validating;
    # the rest (Ray start-up, scheduling, hand-over, checkpoints, reports) is overhead
    result["orchestration_efficiency"] = (
        result["busy_seconds"] + result["setup_seconds"]
    ) / slot_seconds
    result["training_efficiency"] = result["busy_seconds"] / slot_seconds
    return result


def _peer_result(out: Path, seed: int, short: bool) -> dict[str, Any]:
    """A peer's figures from the epochs it logged, its best model tested and refit."""
    log = out / "epochs.jsonl"
    rows = [json.loads(line) for line in (log.read_text().splitlines() if log.exists() else [])]
    result = {
        "points": [(r["t"], r["val_accuracy"]) for r in rows],
        "trials_started": len({r["trial"] for r in rows}),
        "trials_finished": None,  # a killed peer does not say; trials_started bounds it
        "epochs": len(rows),
        "test_accuracy": evaluate_saved(out / "best.keras", short),
    }
    result["best_trial_test_accuracy"] = result["test_accuracy"]
    return result | _peer_refit(out, seed, short)


def _peer_refit(out: Path, seed: int, short: bool) -> dict[str, Any]:
    """The peer's own workflow after its search (bench/peers.py ``refit``), in a
    process of its own once the search's process is gone."""
    cmd = [sys.executable, "-m", "bench.peers", "refit", str(out), str(seed)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(out / "refit.log", "w") as log:
        subprocess.run(cmd + (["--short"] if short else []), stdout=log, stderr=log, env=env)
    path = out / "refit.json"
    return json.loads(path.read_text()) if path.exists() else {"refit_test_accuracy": None}


def _median(values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def report(results: list[dict[str, Any]], budget: float, out: Path) -> str:
    rows = [
        "| system | best val @ budget/2 | best val @ budget | test acc (own workflow) "
        "| test acc (registered / best model) | test acc (best trial) | trials | epochs "
        "| peak RSS (MB) | orchestration eff. | training eff. |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for system in dict.fromkeys(r["system"] for r in results):
        rs = [r for r in results if r["system"] == system]

        def med(key: str, fmt: str = "{:.4f}", rs: list = rs) -> str:
            v = _median([r.get(key) for r in rs])
            return "—" if v is None else fmt.format(v)

        rows.append(
            f"| {system} | {med('best_at_half')} | {med('best_at_budget')} "
            f"| {med('own_workflow_test_accuracy')} "
            f"| {med('test_accuracy')} | {med('best_trial_test_accuracy')} "
            f"| {med('trials_started', '{:.0f}')} "
            f"| {med('epochs', '{:.0f}')} | {med('peak_rss_mb', '{:.0f}')} "
            f"| {med('orchestration_efficiency', '{:.3f}')} "
            f"| {med('training_efficiency', '{:.3f}')} |"
        )
    table = "\n".join(rows)
    seeds = sorted({r["seed"] for r in results})
    if len(seeds) > 1:
        table += "\n\nPer seed (best val @ budget/2 / @ budget / test acc, own workflow):\n\n"
        table += "| system | " + " | ".join(f"seed {s}" for s in seeds) + " |\n"
        table += "|---|" + "---|" * len(seeds) + "\n"
        for system in dict.fromkeys(r["system"] for r in results):
            cells = []
            for seed in seeds:
                r = next((x for x in results if x["system"] == system and x["seed"] == seed), None)
                cells.append(
                    "—"
                    if r is None
                    else " / ".join(
                        "—" if r.get(k) is None else f"{r[k]:.4f}"
                        for k in ("best_at_half", "best_at_budget", "own_workflow_test_accuracy")
                    )
                )
            table += f"| {system} | " + " | ".join(cells) + " |\n"
    header = (
        f"Budget {budget:.0f} s per system, medians over seeds "
        f"{sorted({r['seed'] for r in results})}, {cpu_count()} CPUs.\n\n"
    )
    (out / "results.md").write_text(header + table + "\n")
    _plot(results, budget, out / "anytime.png")
    return header + table


def _plot(results: list[dict[str, Any]], budget: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for i, system in enumerate(dict.fromkeys(r["system"] for r in results)):
        for j, r in enumerate(x for x in results if x["system"] == system):
            pts = sorted(r["points"])
            xs, ys, best = [], [], None
            for t, v in pts:
                best = v if best is None else max(best, v)
                xs.append(t / 60)
                ys.append(best)
            ax.step(
                xs,
                ys,
                where="post",
                color=f"C{i}",
                alpha=0.9 if j == 0 else 0.4,
                label=system if j == 0 else None,
            )
    ax.set_xlim(0, budget / 60)
    halves = [r["best_at_half"] for r in results if r.get("best_at_half") is not None]
    if halves:  # the range where systems differ; the first minutes' climb is cut off
        ax.set_ylim(bottom=max(0.0, min(halves) - 0.05))
    ax.set_xlabel("wall time (minutes)")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title("Anytime performance, same budget")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def scaling(out: Path, sizes: list[int]) -> list[dict[str, Any]]:
    """Driver overhead per trial as the number of 1-epoch digits trials grows."""
    rows = []
    for n in sizes:
        folder = out / f"scaling-{n}"
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(Path(sys.executable).parent / "sweep"),
            "dataset=digits",
            "search_space=keras_tuner",
            f"trials={n}",
            "max_epochs=1",
            "scheduler=fifo",
            f"max_concurrent={cpu_count()}",
            f"name=scaling-{n}",
            f"tracking.uri=sqlite:///{folder / 'mlflow.db'}",
            f"ray.storage_path={folder / 'ray'}",
        ]
        started = time.monotonic()
        subprocess.run(cmd, cwd=folder, capture_output=True, check=True)
        wall = time.monotonic() - started
        b = breakdown(folder / "mlflow.db", f"scaling-{n}", cpu_count(), wall=wall)
        slots, busy = cpu_count(), b["busy_seconds"]
        row = {
            "trials": n,
            "wall_seconds": wall,
            "busy_seconds": busy,
            # everything that is not training, start-up and final evaluation included
            "overhead_per_trial_s": (wall * slots - busy) / n,
            # the same within the trials' window: what each more trial costs
            "steady_overhead_per_trial_s": (b["trials_window_seconds"] * slots - busy) / n,
            "startup_seconds": b["startup_seconds"],
            # the driver's own CPU per trial: scheduling, searcher, MLflow (must stay flat)
            "driver_cpu_per_trial_s": (b["driver_cpu_seconds"] or 0.0) / n,
            "handover_per_trial_s": b["worker_handover_s"] / max(1, n - slots),
            "breakdown": b,
        }
        rows.append(row)
        print(
            f"{n} trials: wall {wall:.1f} s, busy {busy:.1f} s, overhead "
            f"{row['overhead_per_trial_s']:.2f} slot-s per trial (steady state "
            f"{row['steady_overhead_per_trial_s']:.2f}; start-up {b['startup_seconds']:.1f} s); "
            f"driver CPU {row['driver_cpu_per_trial_s'] * 1000:.0f} ms per trial, hand-over "
            f"{row['handover_per_trial_s'] * 1000:.0f} ms per trial",
            flush=True,
        )
    (out / "scaling.json").write_text(json.dumps(rows, indent=2))
    return rows


def merge(files: list[Path], budget: float, out: Path) -> str:
    """One report from the results of several runs (e.g. seeds run on different days)."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for path in files:
        for r in json.loads(path.read_text()):
            if r.get("budget_seconds", budget) != budget:
                raise SystemExit(
                    f"{path}: {r['system']} seed {r['seed']} ran with a "
                    f"{r['budget_seconds']:.0f} s budget, not {budget:.0f} s (--budget-min)"
                )
            if r["system"] != "dnn_sweep":  # a peer's registered model is its best trial's
                r.setdefault("best_trial_test_accuracy", r["test_accuracy"])
            merged[(r["system"], r["seed"])] = {"budget_seconds": budget, **r}
    order = {s: i for i, s in enumerate(SYSTEMS)}
    results = sorted(merged.values(), key=lambda r: (r["seed"], order.get(r["system"], 99)))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return report(results, budget, out)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["trials"]:  # python -m bench trials DIR
        from bench.trials import main as trials

        trials(argv[1:])
        return
    if argv[:1] == ["final"]:  # its own options (see bench/final.py)
        from bench.final import main as final

        final(argv[1:])
        return
    if argv[:1] == ["box"]:  # the cluster in a box against the embedded defaults
        from bench.box import main as box

        box(argv[1:])
        return
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "mode",
        nargs="?",
        default="compare",
        choices=["compare", "scaling", "merge", "tabular", "streaming", "rate", "transfer"],
    )
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="merge: results.json files of earlier runs (same budget); a later file's "
        "(system, seed) replaces an earlier one's",
    )
    parser.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="wall-clock budget per system (default 10; 1 with --short)",
    )
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--short", action="store_true", help="small data, 1-minute budgets")
    parser.add_argument("--scaling-trials", default="16,64,256")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    budget = args.budget_min * 60 if args.budget_min else (60.0 if args.short else 600.0)
    if args.mode != "compare":
        _other_mode(args, out, budget)
        return
    compare(args, out, budget)


def compare(args: argparse.Namespace, out: Path, budget: float) -> None:
    """Every system, seed by seed, on the same budget; results.json after each."""
    max_epochs = 3 if args.short else args.max_epochs
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for system in args.systems.split(","):
            print(f"== {system}, seed {seed}, budget {budget:.0f} s", flush=True)
            r = run_system(system, out / f"{system}-{seed}", budget, seed, max_epochs, args.short)
            print(
                f"   best val {r['best_val_accuracy']}, test {r['test_accuracy']}, "
                f"trials {r['trials_started']}, epochs {r['epochs']}, "
                f"peak {r['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            results.append(r)
            (out / "results.json").write_text(json.dumps(results, indent=2))
    print(report(results, budget, out))


def _other_mode(args: argparse.Namespace, out: Path, budget: float) -> None:
    """scaling, merge, tabular, streaming, rate, transfer: each its own module's run."""
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.mode == "scaling":
        sizes = [int(n) for n in args.scaling_trials.split(",")]
        scaling(out, [min(n, 16) for n in sizes] if args.short else sizes)
    elif args.mode == "tabular":
        from bench.tabular import run as tabular

        print(tabular(out, args.budget_min * 60 if args.budget_min else 180.0, seeds))
    elif args.mode == "streaming":
        from bench.streaming import run as streaming

        print(streaming(out, short=args.short))
    elif args.mode == "merge":
        print(merge(args.files, budget, out))
    elif args.mode == "transfer":
        from bench.transfer import run as transfer

        print(transfer(out, seeds, args.short))
    elif args.mode == "rate":
        from bench.rate import run as rate

        print(rate(out, budget, seeds, args.systems.split(","), args.short))


if __name__ == "__main__":
    main()
