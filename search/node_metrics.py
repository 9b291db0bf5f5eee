"""The parent run records the system metrics of every node a sweep uses, so a user sees
an idle GPU or a swapping node next to the learning curves.

A driver thread takes a sample every ``SAMPLING_S`` seconds and logs it on the parent
run (``system/<metric>``; ``system/<node IP>/<metric>`` on a cluster), step = seconds
since the sweep began, so a resumed sweep's samples follow the first ones. On a cluster
each node runs a small sampler actor (no CPU reserved, pinned with Ray's node affinity);
nodes an autoscaler adds later are picked up as they join. Workers never write to MLflow.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tracking.recorder import SweepRecorder
from tracking.system_metrics import MachineSampler

SAMPLING_S = 5.0
NODE_TIMEOUT_S = 10.0  # a node that does not answer (just died) is skipped this round


class NodeMetrics:
    """``with NodeMetrics(recorder, on_cluster):`` around the trials."""

    def __init__(self, recorder: SweepRecorder, on_cluster: bool) -> None:
        self.recorder, self.on_cluster = recorder, on_cluster
        self.run_id = recorder.parent_run_id
        self.began_s = recorder.parent().info.start_time / 1000
        self.local = None if on_cluster else MachineSampler()
        self.samplers: dict[str, tuple[str, Any]] = {}  # node id -> (IP, actor)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="node-metrics", daemon=True)

    def __enter__(self) -> NodeMetrics:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self._sample()  # the last seconds too
        if self.samplers:
            import ray

            for _, actor in self.samplers.values():
                ray.kill(actor)

    def _loop(self) -> None:
        while not self.done.wait(SAMPLING_S):
            self._sample()

    def _sample(self) -> None:
        metrics = self._local() if self.local is not None else self._cluster()
        if metrics:
            step = int(time.time() - self.began_s)
            self.recorder.log_metrics(self.run_id, metrics, step=step)

    def _local(self) -> dict[str, float]:
        return {f"system/{k}": v for k, v in self.local.take().items()}  # type: ignore[union-attr]

    def _cluster(self) -> dict[str, float]:
        import ray

        self._add_new_nodes()
        refs = {actor.take.remote(): ip for ip, actor in self.samplers.values()}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=NODE_TIMEOUT_S)
        metrics: dict[str, float] = {}
        for ref in ready:
            try:
                sample = ray.get(ref)
            except ray.exceptions.RayError:  # its node is gone
                continue
            metrics.update({f"system/{refs[ref]}/{k}": v for k, v in sample.items()})
        return metrics

    def _add_new_nodes(self) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        sampler = ray.remote(num_cpus=0, max_restarts=0)(MachineSampler)
        for node in ray.nodes():
            if not node["Alive"] or node["NodeID"] in self.samplers:
                continue
            pinned = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
            actor = sampler.options(scheduling_strategy=pinned).remote()
            self.samplers[node["NodeID"]] = (node["NodeManagerAddress"], actor)
