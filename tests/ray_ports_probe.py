"""Starts Ray the way a local sweep does (search.ray_runtime.start_ray) and reports what
listens: one JSON line, then waits for a line on stdin before shutting Ray down."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import psutil

from search.ray_runtime import loopback_only, start_ray

loopback_only(local=True)  # as `sweep` and `run_sweep` do, before Ray is imported
import ray  # noqa: E402


def main() -> None:
    start_ray(SimpleNamespace(cluster_address=None, dashboard=False, dashboard_host="127.0.0.1"))
    ours = {p.pid for p in psutil.Process().children(recursive=True)}
    listeners = [
        {"ip": c.laddr.ip, "port": c.laddr.port, "process": psutil.Process(c.pid).name()}
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in ours
    ]
    gcs = ray.get_runtime_context().gcs_address
    from ray._private.utils import get_dashboard_dependency_error

    said = {
        "gcs_port": int(gcs.rsplit(":", 1)[1]),
        "listeners": listeners,
        # what Ray itself sees: a minimal install (no `cluster` extra) or ray[default]
        "minimal": get_dashboard_dependency_error() is not None,
    }
    print(json.dumps(said), flush=True)
    sys.stdin.readline()
    ray.shutdown()


if __name__ == "__main__":
    main()
