"""`sweep-lr-find`: run the learning-rate finder and record it in MLflow.

The run lands in the sweep's experiment (``name``) tagged ``sweep.role=lr_find``; a later
``sweep`` with the same name can take its learning-rate range from the suggestion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dnn_sweep.errors import ConfigError
from search.quiet import log_to, quietly, run_log
from search.settings import Settings
from tracking.health import check_reachable
from tracking.recorder import SweepRecorder
from trainables.data import load_dataset


@dataclass(frozen=True)
class LrFindSummary:
    run_id: str
    experiment_id: str
    params: dict[str, Any]
    turning_lr: float
    suggested_lr: float
    steps: int


def probe_params(settings: Settings) -> dict[str, Any]:
    """The model to probe: the space's fixed params, then ``lr_find.params``."""
    from trainables.params import resolve

    params = {**settings.space.fixed(), **settings.lr_find.params}
    params.pop("learning_rate", None)
    try:
        resolve(params)
    except ValueError as exc:
        raise ConfigError(f"lr_find.params: {exc}") from exc
    return params


@quietly  # TensorFlow's own messages to the finder's log (search/quiet.py)
def run_lr_find(settings: Settings, echo: Callable[[str], None] = print) -> LrFindSummary:
    """Load the data, run the finder, log curve, plot and suggestion to MLflow."""
    from trainables.lr_finder import find_lr

    opts = settings.lr_find
    params = probe_params(settings)
    data = load_dataset(settings.dataset, settings.seed, settings.task)
    check_reachable(settings.tracking_uri)
    recorder = SweepRecorder(settings.tracking_uri, settings.name)
    run_id = _start_run(recorder, settings, params, data.name)
    logs = log_to(run_log(settings.storage_path, f"lr-find-{run_id}", "lr_find.log"))
    echo(
        f"lr finder on {data.name}: {opts.min_lr:g} -> {opts.max_lr:g} over "
        f"{opts.iterations} batches; model {params or 'defaults'}"
    )
    if logs:
        echo(logs)
    try:
        result = find_lr(
            params,
            data,
            min_lr=opts.min_lr,
            max_lr=opts.max_lr,
            iterations=opts.iterations,
            seed=settings.seed,
        )
    except BaseException as exc:
        recorder.set_tags(run_id, {"error": str(exc)[:5000]})
        recorder.end_run(run_id, "FAILED")
        raise
    _record(recorder, run_id, result)
    recorder.end_run(run_id)
    assert recorder.experiment_id is not None
    return LrFindSummary(
        run_id,
        recorder.experiment_id,
        params,
        result.turning_lr,
        result.suggested_lr,
        len(result.losses),
    )


def _start_run(
    recorder: SweepRecorder, settings: Settings, params: dict[str, Any], dataset: str
) -> str:
    """The finder's MLflow run: the probed model's params and the finder's range."""
    opts = settings.lr_find
    return recorder.start_run(
        f"lr-find-{time.strftime('%Y%m%d-%H%M%S')}",
        {"sweep.role": "lr_find", "sweep.name": settings.name},
        {
            **params,
            "min_lr": opts.min_lr,
            "max_lr": opts.max_lr,
            "iterations": opts.iterations,
            "dataset": dataset,
        },
    )


def _record(recorder: SweepRecorder, run_id: str, result: Any) -> None:
    """Loss vs rate as series, the turning point and suggestion as metrics, the plot
    and the whole curve as JSON."""
    from tracking.plots import close, lr_finder_figure

    recorder.log_series(run_id, "lr_find_lr", result.learning_rates)
    recorder.log_series(run_id, "lr_find_loss", result.losses)
    recorder.log_series(run_id, "lr_find_smoothed_loss", result.smoothed)
    recorder.log_metrics(
        run_id, {"turning_lr": result.turning_lr, "suggested_lr": result.suggested_lr}
    )
    fig = lr_finder_figure(
        result.learning_rates,
        result.losses,
        result.smoothed,
        result.turning_lr,
        result.suggested_lr,
    )
    recorder.log_figure(run_id, fig, "lr_finder.png")
    close(fig)
    recorder.log_dict(
        run_id,
        {
            "learning_rates": result.learning_rates,
            "losses": result.losses,
            "turning_lr": result.turning_lr,
            "suggested_lr": result.suggested_lr,
        },
        "lr_finder.json",
    )
