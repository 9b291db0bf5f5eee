"""A 2-node Ray cluster in its own process, driven over stdin/stdout by tests.

`ray.cluster_utils.Cluster` misbehaves in a process that already imported TensorFlow
(as the pytest process has), so the cluster lives here. Protocol: prints
``ADDRESS <addr>`` and ``WORKER <node id>`` once up; reads ``remove`` (kill the worker
node, no grace) and ``stop`` (shut everything down) from stdin.
"""

from __future__ import annotations

import sys

from ray.cluster_utils import Cluster


def main() -> None:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.2", "include_dashboard": False},
    )
    worker = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.2")
    cluster.wait_for_nodes()
    print(f"ADDRESS {cluster.address}\nWORKER {worker.node_id}", flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "remove":
                cluster.remove_node(worker, allow_graceful=False)
                print("REMOVED", flush=True)
            elif line.strip() == "stop":
                break
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
