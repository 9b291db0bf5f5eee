"""System metrics of one machine: CPU, memory, disk and network, and NVIDIA (or AMD) GPUs
(utilization, memory, power) where ``nvidia-ml-py`` is installed (the ``gpu`` extra).

MLflow's own metric monitors, the ones ``mlflow.start_run(log_system_metrics=True)``
samples, without its logging thread: on a cluster the samples are taken on each node
and written by the driver, so worker nodes never talk to MLflow (its server on the head
listens on 127.0.0.1 only). Names as MLflow gives them (``cpu_utilization_percentage``,
``system_memory_usage_megabytes``, ``gpu_0_utilization_percentage``, ...).
"""

from __future__ import annotations

import contextlib
from typing import Any


def _monitors() -> list[Any]:
    from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
    from mlflow.system_metrics.metrics.disk_monitor import DiskMonitor
    from mlflow.system_metrics.metrics.gpu_monitor import GPUMonitor
    from mlflow.system_metrics.metrics.network_monitor import NetworkMonitor
    from mlflow.system_metrics.metrics.rocm_monitor import ROCMMonitor

    monitors: list[Any] = [CPUMonitor(), DiskMonitor(), NetworkMonitor()]
    for gpu in (GPUMonitor, ROCMMonitor):  # each raises without its library or a card
        with contextlib.suppress(Exception):
            monitors.append(gpu())
            break
    return monitors


class MachineSampler:
    """``take()``: this machine now (CPU: its use since the previous take)."""

    def __init__(self) -> None:
        self.monitors = _monitors()
        self.take()  # CPU use is measured between two calls: the first one is empty

    def take(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for monitor in self.monitors:
            monitor.collect_metrics()
            metrics.update(monitor.aggregate_metrics())
            monitor.clear_metrics()
        return metrics
