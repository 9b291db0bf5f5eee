"""A 2-node Ray cluster on this machine started as users start one (`ray start --head`,
`ray start --address`, token auth on): a sweep joins it with cluster=remote and no Ray
setting in its environment, uses both nodes; the test kills the worker node mid-trial;
the sweep completes and the interrupted trial resumes from its checkpoint on the head."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.cluster_helper import HEAD_IP, WORKER_IP, RayStartCluster
from tests.conftest import ROOT
from tests.helpers import trial_runs

pytestmark = pytest.mark.slow

TRIALS, EPOCHS = 4, 40


@pytest.fixture(scope="module")
def two_node_cluster():
    cluster = RayStartCluster(cpus=1, root=ROOT)
    try:
        yield cluster
    finally:
        cluster.stop()


def _user_env() -> dict[str, str]:
    """The sweep's environment: what a user's shell has, no Ray auth setting (the
    sweep must find the token and set the mode itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    return {**env, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _refused(tmp_path: Path, args: list[str], env: dict[str, str]) -> str:
    """A sweep that must end before creating anything: its one line of stderr."""
    sweep = str(Path(sys.executable).parent / "sweep")
    common = ["dataset=digits", "trials=2", "tracking.uri=sqlite:///n.db", "ray.storage_path=ray"]
    out = subprocess.run(
        [sweep, "cluster=remote", *args, *common],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())  # no record, no folder
    (line,) = out.stderr.strip().splitlines()
    return out.stdout + line


@pytest.mark.parametrize("where", ["no token here", "RAY_AUTH_TOKEN_PATH names nothing"])
def test_a_missing_token_is_one_line_saying_what_to_set(tmp_path, two_node_cluster, where):
    home = tmp_path.parent / "home"  # a machine without ~/.ray/auth_token
    home.mkdir(exist_ok=True)
    env = {**_user_env(), "HOME": str(home)}
    if where != "no token here":
        env["RAY_AUTH_TOKEN_PATH"] = str(home / "missing")
    started = time.monotonic()
    said = _refused(tmp_path, [f"cluster.address={two_node_cluster.address}"], env)
    assert "RAY_AUTH_TOKEN=<the output of `ray get-auth-token` on the head>" in said
    assert ("refused" in said) == (where == "no token here"), said
    assert time.monotonic() - started < 30


def test_gpu_trials_wait_for_gpu_workers_then_end_clearly(tmp_path, two_node_cluster):
    args = [f"cluster.address={two_node_cluster.address}", "trial.gpus=1", "cluster.gpu_wait_s=3"]
    said = _refused(tmp_path, args, _user_env())
    assert "Waiting for GPU workers to join: 0 of 1 GPU so far" in said
    assert "cluster.gpu_wait_s=3: no GPU worker joined in time" in said


def test_sweep_survives_losing_a_node(tmp_path, two_node_cluster):
    cluster = two_node_cluster
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
    proc = subprocess.Popen(
        args, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=_user_env()
    )
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
        cluster.kill_worker()  # the node dies mid-trial, no grace
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
    # system metrics of both nodes on the parent run, named by node IP
    for ip in (HEAD_IP, WORKER_IP):
        assert parent.data.metrics[f"system/{ip}/cpu_utilization_percentage"] >= 0
