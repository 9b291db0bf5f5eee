"""Several objectives: each trial's point, the Pareto front, and the model chosen from it.

A trial's point is its values at its best epoch by the first objective (the epoch whose
checkpoint would be registered). The front is the set of trials no other trial beats
on every objective. The registered model follows one documented rule
(``pareto.tolerance``): among the front's trials whose first objective is within the
tolerance of the best, the one best on the second objective, then the third...
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


def points(results: Any, objectives: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """One row per trial that reported every objective: its id, its values, its params."""
    from search.pbt import flat

    primary, mode = objectives[0]
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        names = [m for m, _ in objectives]
        if frame is None or any(m not in frame for m in names) or frame[primary].isna().all():
            continue
        best = frame[primary].idxmax() if mode == "max" else frame[primary].idxmin()
        row = {"trial_id": str(result.metrics.get("trial_id", "?"))}
        row |= {m: float(frame.loc[best, m]) for m in names}
        rows.append(row | {"params": flat(result.config)})
    return rows


def _dominates(a: dict, b: dict, objectives: tuple[tuple[str, str], ...]) -> bool:
    signs = [(m, 1.0 if mode == "max" else -1.0) for m, mode in objectives]
    at_least = all(s * a[m] >= s * b[m] for m, s in signs)
    return at_least and any(s * a[m] > s * b[m] for m, s in signs)


def front(rows: list[dict[str, Any]], objectives: tuple[tuple[str, str], ...]) -> list[int]:
    """Indices of the rows no other row dominates."""
    return [
        i
        for i, row in enumerate(rows)
        if not any(_dominates(other, row, objectives) for other in rows if other is not row)
    ]


def choose(
    rows: list[dict[str, Any]], objectives: tuple[tuple[str, str], ...], tolerance: float
) -> dict[str, Any]:
    """The registered trial: the rule in this module's docstring."""
    optimal = [rows[i] for i in front(rows, objectives)]
    primary, mode = objectives[0]
    sign = 1.0 if mode == "max" else -1.0
    top = max(sign * r[primary] for r in optimal)
    close = [r for r in optimal if sign * r[primary] >= top - tolerance]

    def rest(row: dict[str, Any]) -> tuple[float, ...]:  # smaller is better
        return tuple((-1.0 if m_mode == "max" else 1.0) * row[m] for m, m_mode in objectives[1:])

    return min(close, key=rest)


def write(
    rows: list[dict[str, Any]],
    objectives: tuple[tuple[str, str], ...],
    chosen: str,
    folder: Path,
) -> None:
    """``front.csv`` (every trial, its values, whether it is on the front, which one was
    registered, its params) and ``front.png`` (the first two objectives)."""
    on_front = set(front(rows, objectives))
    names = [m for m, _ in objectives]
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "front.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", *names, "pareto_optimal", "registered", "params"])
        for i, row in enumerate(rows):
            writer.writerow(
                [
                    f"trial-{row['trial_id']}",
                    *(row[m] for m in names),
                    i in on_front,
                    row["trial_id"] == chosen,
                    row["params"],
                ]
            )
    _plot(rows, objectives, on_front, chosen, folder / "front.png")


def _plot(rows, objectives, on_front, chosen, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (x, x_mode), (y, y_mode) = objectives[0], objectives[1]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter([r[x] for r in rows], [r[y] for r in rows], c="lightgrey", label="trials")
    optimal = sorted((rows[i] for i in on_front), key=lambda r: r[x])
    ax.plot(
        [r[x] for r in optimal],
        [r[y] for r in optimal],
        "o-",
        c="tab:blue",
        label=f"Pareto front ({len(optimal)})",
    )
    mine = [r for r in rows if r["trial_id"] == chosen]
    ax.scatter(
        [r[x] for r in mine],
        [r[y] for r in mine],
        s=160,
        facecolors="none",
        edgecolors="tab:red",
        linewidths=2,
        label="registered",
    )
    ax.set_xlabel(f"{x} ({x_mode})")
    ax.set_ylabel(f"{y} ({y_mode})")
    if y in ("n_params", "latency_ms"):
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
