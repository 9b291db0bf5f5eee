"""A sweep's results across its Ray Tune runs ("segments").

A sweep is one Tune run, plus one more each time ``resume=true trials=N`` adds trials:
Tune cannot grow a finished run's ``num_samples``, so the added trials run as a new Tune
run asking the same Optuna study, recorded under the same MLflow parent. The final phase
reads them together through this view, shaped like Tune's ``ResultGrid``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class SweepResults:
    """Tune's result grids of every segment of a sweep, read as one."""

    def __init__(self, grids: list[Any]) -> None:
        self.grids = grids

    def __iter__(self) -> Iterator[Any]:
        for grid in self.grids:
            yield from grid

    def __len__(self) -> int:
        return sum(len(grid) for grid in self.grids)

    @property
    def trials(self) -> list[Any]:
        """Tune's trial records (status, last result, config) of every segment, read
        back from each segment's experiment folder (``ResultGrid`` holds only results)."""
        from ray.tune import ExperimentAnalysis

        return [
            trial
            for grid in self.grids
            for trial in ExperimentAnalysis(
                grid.experiment_path, storage_filesystem=grid.filesystem
            ).trials
        ]

    def get_best_result(self, metric: str, mode: str, scope: str = "all") -> Any:
        """The result with the best ``metric`` over every segment (``ResultGrid``'s own
        choice within each, then the best of those).

        Raises:
            RuntimeError: no trial reported ``metric``.
        """
        best, best_value = None, None
        for grid in self.grids:
            try:
                result = grid.get_best_result(metric, mode, scope=scope)
            except RuntimeError:  # no result with the metric in this segment
                continue
            column = result.metrics_dataframe[metric]
            value = column.max() if mode == "max" else column.min()
            better = best_value is None or (
                value > best_value if mode == "max" else value < best_value
            )
            if better:
                best, best_value = result, value
        if best is None:
            raise RuntimeError(f"no trial reported {metric}")
        return best
