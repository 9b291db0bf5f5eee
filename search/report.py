"""The sweep report: what a user looks at after a sweep, built from its MLflow records.

Files (all logged to the parent run under ``report/``):

- ``leaderboard.csv``           every trial ranked by its best objective, with its params;
- ``learning_curves.png``       the objective and val_loss vs epoch of the top trials;
- ``optimization_history.png``  each trial's best objective in start order + best so far;
- ``param_importances.png``      fANOVA importances (Optuna's evaluator);
- ``parallel_coordinates.png``   params vs the objective;
- ``report.html``               both of them as Plotly's interactive figures, in one page
  that works offline (Plotly's JavaScript is embedded once, not fetched from a CDN).

Importances and parallel coordinates come from Optuna's visualization module, fed with
the sweep's stored Optuna study (``study.storage``), so each param has the distribution
the search space declared (log scales, steps, conditional params).
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any

from tracking.recorder import param_value
from tracking.runs import DEFAULT_OBJECTIVE, SweepRecord, TrialRecord, leaderboard

TOP_K = 5
# Every file a full report holds (README.txt besides).
REPORT_FILES = (
    "leaderboard.csv",
    "learning_curves.png",
    "optimization_history.png",
    "param_importances.png",
    "parallel_coordinates.png",
    "report.html",
)
# The interactive page's figures: (file stem, heading).
INTERACTIVE = {
    "param_importances": "Hyperparameter importances (fANOVA)",
    "parallel_coordinates": "Parallel coordinates: searched params vs the objective",
}


def write_leaderboard(rows: list[dict[str, Any]], path: Path) -> None:
    fields = list(rows[0]) if rows else ["rank", "trial", "status"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _objective(trials: list[TrialRecord]) -> tuple[str, str]:
    return trials[0].objective if trials else DEFAULT_OBJECTIVE


def _ranked(trials: list[TrialRecord]) -> list[TrialRecord]:
    scored = [t for t in trials if not math.isnan(t.best)]
    sign = 1 if _objective(trials)[1] == "min" else -1
    return sorted(scored, key=lambda t: sign * t.best)


def plot_learning_curves(trials: list[TrialRecord], path: Path, top_k: int = TOP_K) -> None:
    import matplotlib.pyplot as plt

    metric = _objective(trials)[0]
    shown = (metric, "val_loss") if metric != "val_loss" else ("val_loss", "loss")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for i, t in enumerate(_ranked(trials)[:top_k]):
        for ax, metric in zip(axes, shown, strict=True):
            curve = t.curves.get(metric, [])
            ax.plot(
                [s for s, _ in curve],
                [v for _, v in curve],
                marker="o",
                ms=3,
                color=f"C{i}",
                label=f"#{i + 1} {t.name} ({t.best:.4g})",
            )
    for ax, metric in zip(axes, shown, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"Top {top_k} trials: {shown[0]}")
    axes[1].set_title(shown[1])
    axes[0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_history(trials: list[TrialRecord], path: Path) -> None:
    import matplotlib.pyplot as plt

    metric, mode = _objective(trials)
    xs = list(range(1, len(trials) + 1))
    ys = [t.best for t in trials]
    pick = min if mode == "min" else max
    best, running = math.nan, []
    for y in ys:
        best = y if math.isnan(best) else (pick(best, y) if not math.isnan(y) else best)
        running.append(best)
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    colors = {"completed": "C0", "pruned": "C1", "failed": "C3"}
    for status, color in colors.items():
        pts = [(x, y) for x, y, t in zip(xs, ys, trials, strict=True) if t.status == status]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=18, color=color, label=status)
    ax.step(xs, running, where="post", color="k", lw=1.2, label="best so far")
    ax.set_xlabel("trial (start order)")
    ax.set_ylabel(f"best {metric} of the trial")
    ax.set_title("Optimization history")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def stored_study(sweep: SweepRecord) -> tuple[Any, str | None]:
    """The Optuna study the sweep asked, as stored (every param with its declared
    distribution: log scales, steps, conditions), or None and why not."""
    import optuna

    if sweep.study is None:
        return None, "the sweep has no stored Optuna study (a population search, or none kept)"
    from tracking.secrets import MASK, mask

    name, storage = sweep.study
    if MASK in storage:
        return None, (
            f"Optuna study {name}: its storage URL is recorded without its credentials ({storage})"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except Exception as exc:  # noqa: BLE001 - a note in the report, never a failed sweep
        return None, mask(f"Optuna study {name} cannot be read from {storage} ({exc})")
    done = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    if len(done) < 2 or not any(t.params for t in done):
        return None, "need >= 2 scored trials with searched params"
    return study, None


def write_interactive(figures: dict[str, Any], path: Path, title: str) -> None:
    """One HTML page holding the Plotly ``figures`` ({stem: figure}, headed as in
    ``INTERACTIVE``), self-contained: Plotly's JavaScript is embedded once, in the head,
    so the page opens offline (in MLflow's artifact viewer too) and fetches nothing."""
    from html import escape

    from plotly.offline import get_plotlyjs

    sections = "".join(
        f"<h2>{escape(INTERACTIVE.get(stem, stem))}</h2>\n"
        + fig.to_html(full_html=False, include_plotlyjs=False, default_height="560px")
        + "\n"
        for stem, fig in figures.items()
    )
    path.write_text(
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        '</head>\n<body style="font-family: sans-serif">\n'
        f"<h1>{escape(title)}</h1>\n{sections}</body>\n</html>\n",
        encoding="utf-8",
    )


def _optuna_figures(study: Any, folder: Path, metric: str) -> list[str]:
    """Importances and parallel coordinates of the stored study on its first objective
    (``metric``): a PNG each, and both in ``report.html``; returns what could not be
    drawn (too few trials, a missing optional library) so the report says so."""
    import matplotlib.pyplot as plt
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_mpl

    missing, drawn = [], {}
    figures = {
        "param_importances": (vis.plot_param_importances, vis_mpl.plot_param_importances),
        "parallel_coordinates": (vis.plot_parallel_coordinate, vis_mpl.plot_parallel_coordinate),
    }
    for name, (interactive, static) in figures.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = static(study, target=_first_value, target_name=metric)
                fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
                fig.set_size_inches(9, 5)
                fig.tight_layout()
                fig.savefig(folder / f"{name}.png", dpi=110)
                plt.close(fig)
                drawn[name] = interactive(study, target=_first_value, target_name=metric)
        except (ValueError, RuntimeError, ImportError, ZeroDivisionError) as exc:
            missing.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    if drawn:
        title = f"Sweep {study.study_name}: {metric}"
        write_interactive(drawn, folder / "report.html", title)
    return missing


def _first_value(trial: Any) -> float:
    """What the figures plot: the trial's value on the sweep's first objective."""
    return trial.values[0]


def build_report(sweep: SweepRecord, folder: Path, top_k: int = TOP_K) -> list[str]:
    """Write the report files of ``sweep`` into ``folder``; returns notes on any figure
    that could not be drawn (also written to ``README.txt`` there)."""
    import matplotlib

    matplotlib.use("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    write_leaderboard(leaderboard(sweep.trials), folder / "leaderboard.csv")
    plot_learning_curves(sweep.trials, folder / "learning_curves.png", top_k)
    plot_history(sweep.trials, folder / "optimization_history.png")
    study, why_not = stored_study(sweep)
    if study is None:
        notes = [f"param_importances, parallel_coordinates: {why_not}"]
    else:
        notes = _optuna_figures(study, folder, sweep.objective[0])
    (folder / "README.txt").write_text(
        "Sweep report: leaderboard.csv, learning_curves.png, optimization_history.png, "
        "param_importances.png, parallel_coordinates.png, report.html (both interactive, "
        "offline)\n" + "".join(f"not drawn: {n}\n" for n in notes)
    )
    return notes


def format_leaderboard(sweep: SweepRecord, name: str, top: int) -> str:
    """The top ``top`` trials as a text table: searched params as columns, constants
    (one value across the sweep) listed once above it."""
    rows = leaderboard(sweep.trials)
    params = sorted({k[len("param.") :] for r in rows for k in r if k.startswith("param.")})
    constant = {
        k: rows[0][f"param.{k}"]
        for k in params
        if rows and len({r[f"param.{k}"] for r in rows}) == 1
    }
    searched = [k for k in params if k not in constant]
    counts: dict[str, int] = {}
    for t in sweep.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    metric = sweep.objective[0]
    name_only = metric.removeprefix("val_")
    test = sweep.metrics.get(f"test_{name_only}")
    lines = [
        f"Sweep '{name}' (parent run {sweep.parent_run_id}, {sweep.parent_status.lower()}): "
        f"{len(rows)} trials ("
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        + ")"
        + (f"; best model test_{name_only} {test:.4f}" if test is not None else ""),
    ]
    if constant:
        lines.append("fixed: " + " ".join(f"{k}={v}" for k, v in constant.items()))
    header = ["rank", "trial", "status", "epochs", f"best_{metric}", *searched]
    table = [header]
    for r in rows[:top]:
        best = r[f"best_{metric}"]
        table.append(
            [
                str(r["rank"]),
                r["trial"],
                r["status"],
                str(r["epochs"]),
                "-" if math.isnan(best) else f"{best:.4f}",
                *(_short(r[f"param.{k}"]) for k in searched),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    if len(rows) > top:
        lines.append(f"... {len(rows) - top} more (--top N, or --csv FILE for all)")
    return "\n".join(lines + _recheck_lines(sweep))


def _recheck_lines(sweep: SweepRecord) -> list[str]:
    """The final phase's re-check (recheck/table.csv), when there was one: each config's
    search score, its fresh seeds, their mean and spread, and which was picked."""
    if not sweep.recheck:
        return []
    gap = sweep.metrics.get("optimism_gap")
    table = [list(sweep.recheck[0])]
    table += [[_short(v) if v else "-" for v in row.values()] for row in sweep.recheck]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [
        "",
        "re-check on fresh seeds (recheck/table.csv)"
        + (f"; optimism_gap {gap:+.4f}" if gap is not None else "")
        + ":",
        *("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table),
    ]


def _short(text: str) -> str:
    value = param_value(text)
    return f"{value:.4g}" if isinstance(value, float) else str(value)
