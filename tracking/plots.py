"""Figures logged to MLflow. Matplotlib with the Agg backend: no display needed."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def lr_finder_figure(
    learning_rates: list[float],
    losses: list[float],
    smoothed: list[float],
    turning_lr: float,
    suggested_lr: float,
) -> Any:
    """Loss vs learning rate on a log x axis, with the turning point and the suggestion."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.plot(learning_rates, losses, color="0.75", linewidth=0.8, label="batch loss")
    ax.plot(learning_rates, smoothed, color="C0", linewidth=1.8, label="smoothed loss")
    ax.axvline(turning_lr, color="C3", linestyle="--", label=f"turning point {turning_lr:.3g}")
    ax.axvline(suggested_lr, color="C2", linestyle="-", label=f"suggested lr {suggested_lr:.3g}")
    ax.set_xscale("log")
    low = min(smoothed)
    ax.set_ylim(low * 0.9, min(max(losses), low * 4.5))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate finder")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def close(fig: Any) -> None:
    plt.close(fig)
