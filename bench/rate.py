"""`python -m bench rate`: does the harness slow a peer down? Each Keras Tuner peer runs
twice, one after the other, for the same budget counted from its launch: once in the
harness (our epoch callback logging every epoch and saving the best model, the memory
sampler watching) and once alone, as its users run it (no callback of ours). Both runs'
completed trials and their epochs are counted from Keras Tuner's own trial records, so
the two counts come from the same place."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.peers import kt_epochs


def _alone(system: str, out: Path, budget: float, seed: int, short: bool) -> dict[str, Any]:
    from bench.__main__ import _stop, start_peer

    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    max_epochs = 3 if short else 10
    proc = start_peer(system, out, budget, seed, max_epochs, short, started, "--standalone")
    _stop(proc, budget)
    return kt_epochs(out, max_epochs)


def run(out: Path, budget: float, seeds: list[int], systems: list[str], short: bool) -> str:
    from bench.__main__ import run_system

    rows = []
    for seed in seeds:
        for system in (s for s in systems if s.startswith("kt_")):
            harness = out / f"{system}-{seed}-harness"
            logged = run_system(system, harness, budget, seed, 3 if short else 10, short)
            rows.append(
                {
                    "system": system,
                    "seed": seed,
                    "harness": kt_epochs(harness, 3 if short else 10)
                    | {"logged_epochs": logged["epochs"]},
                    "alone": _alone(system, out / f"{system}-{seed}-alone", budget, seed, short),
                }
            )
            (out / "rate.json").write_text(json.dumps(rows, indent=2))
    lines = [
        f"Completed trials and their epochs in {budget:.0f} s (Keras Tuner's own records), "
        "in the harness and alone:",
        "",
        "| system | seed | epochs harness / alone | trials harness / alone "
        "| best val harness / alone |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        h, a = r["harness"], r["alone"]
        lines.append(
            f"| {r['system']} | {r['seed']} | {h['epochs']} / {a['epochs']} "
            f"| {h['trials']} / {a['trials']} "
            f"| {h['best_val_accuracy']:.4f} / {a['best_val_accuracy']:.4f} |"
        )
    table = "\n".join(lines)
    (out / "rate.md").write_text(table + "\n")
    return table
