"""A cluster in a box, on this machine's loopback: the parts a durable cluster has, each
the real thing: PostgreSQL (MLflow's store, and the Optuna study in a database of its
own), an S3 server (Ray's storage, MLflow's artifacts), an MLflow server on both, and a
Ray head with two worker nodes under token auth. tests/test_box.py runs sweeps against
it; ``python -m bench box`` measures it against the embedded defaults."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.cluster_helper import RayStartCluster
from tests.helpers import free_port, mlflow_server
from tests.postgres_server import Postgres, postgres_server
from tests.s3_server import S3, s3_server

ROOT = Path(__file__).resolve().parents[1]


class Box:
    """The box's parts and the command line of a sweep against them; its MLflow server
    (always on one port, as a cluster's is) can be stopped and started again."""

    def __init__(self, folder: Path, pg: Postgres, s3: S3, cluster: RayStartCluster) -> None:
        self.folder, self.pg, self.s3, self.cluster = folder, pg, s3, cluster
        self.port = free_port()
        self.tracking_uri = f"http://127.0.0.1:{self.port}"
        self.storage = s3.uri("runs")
        self._server = contextlib.ExitStack()

    def start_mlflow(self) -> None:
        env = {
            **self.s3.env,
            "MLFLOW_S3_ENDPOINT_URL": f"http://{self.s3.endpoint}",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        artifacts = f"s3://{self.s3.bucket}/mlflow-artifacts"
        server = mlflow_server(self.folder, self.pg.uri("mlflow"), artifacts, self.port, env)
        self._server.enter_context(server)

    def stop_mlflow(self) -> None:
        self._server.close()

    def env(self) -> dict[str, str]:
        """A user's shell on the driver's machine: the store's credentials, Ray's token
        in its standard file (the sweep turns token auth on itself)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        return {**env, **self.s3.env, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def secrets(self) -> list[str]:
        """What a resume gives again: where the sweep is, and the study's password."""
        # quoted for Hydra: the S3 URI's query holds `=` and `&`
        return [f"ray.storage_path='{self.storage}'", f"study.storage='{self.pg.uri('optuna')}'"]

    def sweep_args(self, name: str) -> list[str]:
        """Where a sweep named ``name`` runs and records: the box's parts."""
        return [
            "cluster=remote",
            f"cluster.address={self.cluster.address}",
            f"name={name}",
            f"tracking.uri={self.tracking_uri}",
            *self.secrets(),
        ]

    def start_sweep(self, work: Path, args: list[str]) -> subprocess.Popen:
        work.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "sweep"), *args],
            cwd=work,
            env=self.env(),
            stdout=open(work / f"sweep-{time.time():.0f}.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.tracking_uri)


@contextlib.contextmanager
def cluster_in_a_box(folder: Path, workers: int = 2) -> Iterator[Box]:
    """Every part started (a node of 1 CPU each), then stopped with all it wrote."""
    with postgres_server(("mlflow", "optuna")) as pg, s3_server(folder / "s3") as s3:
        cluster = RayStartCluster(cpus=1, root=ROOT, workers=workers, env=s3.env)
        box = Box(folder, pg, s3, cluster)
        try:
            box.start_mlflow()
            yield box
        finally:
            box.stop_mlflow()
            cluster.stop()
