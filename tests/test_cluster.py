"""A 2-node Ray cluster on this machine (ray.cluster_utils): a sweep joins it
(cluster=remote), uses both nodes; the test kills the worker node mid-trial; the sweep
completes and the interrupted trial resumes from its checkpoint on the other node."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT
from tests.helpers import trial_runs

pytestmark = pytest.mark.slow

TRIALS, EPOCHS = 4, 40


class TwoNodeCluster:
    """Handle on tests/cluster_helper.py running in its own process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster_helper"],
            cwd=ROOT,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        lines = dict(self.proc.stdout.readline().split(" ", 1) for _ in range(2))
        self.address = lines["ADDRESS"].strip()
        self.worker_id = lines["WORKER"].strip()

    def remove_worker(self) -> None:
        self.proc.stdin.write("remove\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "REMOVED"

    def stop(self) -> None:
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


@pytest.fixture
def two_node_cluster():
    # Multi-node on one host: loopback 127.0.0.2 (Ray rewrites 127.0.0.1), and every process
    # shares the auth token Ray creates on first use (see ../shared/GOTCHAS.md).
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "PYTHONPATH": str(ROOT),
        "RAY_AUTH_TOKEN_PATH": str(Path("~/.ray/auth_token").expanduser()),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    cluster = TwoNodeCluster(env)
    try:
        yield cluster, env
    finally:
        cluster.stop()


def test_sweep_survives_losing_a_node(tmp_path, two_node_cluster):
    cluster, env = two_node_cluster
    sweep = str(Path(sys.executable).parent / "sweep")
    args = [
        sweep,
        "cluster=remote",
        f"cluster.address={cluster.address}",
        "dataset=digits",
        "search_space=keras_tuner",
        "search_space.params.n_hidden=2",
        f"trials={TRIALS}",
        f"max_epochs={EPOCHS}",
        "max_concurrent=2",
        "scheduler=fifo",
        "seed=0",
        "name=nodes",
        "tracking.uri=sqlite:///n.db",
        "ray.storage_path=ray",
    ]
    log = open(tmp_path / "sweep.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
    client = MlflowClient(f"sqlite:///{tmp_path / 'n.db'}")
    victim = None
    try:
        deadline = time.monotonic() + 300
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                exp = client.get_experiment_by_name("nodes")
                runs = client.search_runs([exp.experiment_id]) if exp else []
            except Exception:  # noqa: BLE001 - the database may not exist yet
                continue
            for run in runs:
                on_worker = run.data.tags.get("nodes") == cluster.worker_id
                epochs = len(client.get_metric_history(run.info.run_id, "val_accuracy"))
                if run.info.status == "RUNNING" and on_worker and 3 <= epochs < EPOCHS - 5:
                    victim = run.data.tags["trial_id"]
        assert victim is not None, (tmp_path / "sweep.log").read_text()[-3000:]
        cluster.remove_worker()  # the node dies mid-trial, no grace
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == 0, (tmp_path / "sweep.log").read_text()[-3000:]

    (parent,), children = trial_runs(client, "nodes")
    assert len(children) == TRIALS and len({c.data.tags["trial_id"] for c in children}) == TRIALS
    nodes_used = set().union(*(c.data.tags["nodes"].split(",") for c in children))
    assert cluster.worker_id in nodes_used and len(nodes_used) == 2  # both nodes ran trials
    (moved,) = [c for c in children if c.data.tags["trial_id"] == victim]
    assert len(moved.data.tags["nodes"].split(",")) == 2  # retried on the surviving node
    assert moved.data.tags.get("retried") == "true"
    assert int(moved.data.tags["resumed_from_epoch"]) >= 3  # from its checkpoint
    steps = [m.step for m in client.get_metric_history(moved.info.run_id, "val_accuracy")]
    assert steps == list(range(1, EPOCHS + 1))  # one continuous learning curve
    assert moved.info.status == "FINISHED" and parent.info.status == "FINISHED"
