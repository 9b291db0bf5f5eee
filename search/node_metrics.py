"""The parent run records the system metrics of every node a sweep uses, so a user sees
an idle GPU or a swapping node next to the learning curves.

Locally the driver's machine is the only node: one monitor thread in the driver. On a
cluster one small actor per node (no CPU reserved, pinned with Ray's node affinity)
runs the monitor there; nodes an autoscaler adds later are picked up every
``WATCH_EVERY_S``. Metric names carry the node's IP.
"""

from __future__ import annotations

import threading
from typing import Any

from tracking.system_metrics import start_monitor, stop_monitor

WATCH_EVERY_S = 30.0


class _NodeMonitor:
    """Runs on one node for the sweep's length (a Ray actor)."""

    def __init__(self, run_id: str, tracking_uri: str, node: str) -> None:
        self.monitor = start_monitor(run_id, tracking_uri, node)

    def stop(self) -> None:
        stop_monitor(self.monitor)


class NodeMetrics:
    """``with NodeMetrics(run_id, uri, on_cluster):`` around the trials."""

    def __init__(self, run_id: str, tracking_uri: str, on_cluster: bool) -> None:
        self.run_id, self.tracking_uri, self.on_cluster = run_id, tracking_uri, on_cluster
        self.local: Any = None
        self.actors: dict[str, Any] = {}
        self.done = threading.Event()
        self.watcher: threading.Thread | None = None

    def __enter__(self) -> NodeMetrics:
        if not self.on_cluster:
            self.local = start_monitor(self.run_id, self.tracking_uri)
            return self
        self.watcher = threading.Thread(target=self._watch, name="node-metrics", daemon=True)
        self.watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.local is not None:
            stop_monitor(self.local)
        if self.watcher is not None:
            self.watcher.join()
            self._stop_actors()

    def _watch(self) -> None:
        while True:
            self._add_new_nodes()
            if self.done.wait(WATCH_EVERY_S):
                return

    def _add_new_nodes(self) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        actor = ray.remote(num_cpus=0, max_restarts=0)(_NodeMonitor)
        for node in ray.nodes():
            if not node["Alive"] or node["NodeID"] in self.actors:
                continue
            pinned = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
            self.actors[node["NodeID"]] = actor.options(scheduling_strategy=pinned).remote(
                self.run_id, self.tracking_uri, node["NodeManagerAddress"]
            )

    def _stop_actors(self) -> None:
        import ray

        stops = [actor.stop.remote() for actor in self.actors.values()]
        ray.wait(stops, num_returns=len(stops), timeout=30)  # a dead node's never returns
        for actor in self.actors.values():
            ray.kill(actor)
