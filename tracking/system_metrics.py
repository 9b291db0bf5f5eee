"""System metrics of one machine on a run: CPU, memory, disk and network, and NVIDIA GPUs
(utilization, memory, power) where ``nvidia-ml-py`` is installed (the ``gpu`` extra).

MLflow's own monitor, the one ``mlflow.start_run(log_system_metrics=True)`` starts, built
directly: the fluent call would make the sweep's parent run this process's active run
(and end it at exit), while a sweep's parent is shared by the driver and every node.
Metrics are named ``system/<name>`` (one machine) or ``system/<node>/<name>`` (a cluster),
which the MLflow UI shows on the run's "System metrics" tab.
"""

from __future__ import annotations

import logging
from typing import Any

# Seconds between samples: fine enough for a few-minute sweep, ~1 write per node per step.
SAMPLING_S = 5.0


def start_monitor(run_id: str, tracking_uri: str, node: str | None = None) -> Any:
    """Sample this machine every ``SAMPLING_S`` seconds onto ``run_id`` in a daemon thread,
    continuing the steps already logged (a resumed sweep appends). Stops by itself when
    the run ends; ``.finish()`` stops it and flushes."""
    from mlflow.system_metrics import system_metrics_monitor as sm

    # its INFO lines ("Started monitoring ...") would interleave with the sweep's progress
    logging.getLogger(sm.__name__).setLevel(logging.WARNING)
    monitor = sm.SystemMetricsMonitor(
        run_id,
        sampling_interval=SAMPLING_S,
        resume_logging=True,
        node_id=node,
        tracking_uri=tracking_uri,
    )
    monitor.start()
    return monitor


def stop_monitor(monitor: Any) -> None:
    """Stop and flush, with one last sample: MLflow's loop drops the interval it was in,
    so a sweep shorter than ``SAMPLING_S`` would otherwise record nothing."""
    monitor.finish()
    monitor.collect_metrics()
    monitor.publish_metrics(monitor.aggregate_metrics())
    monitor.mlflow_logger.flush()
