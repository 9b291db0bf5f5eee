"""Helpers for the slow tests that run the real command lines."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path


def run_cli(
    command: str, cwd: Path, *args: str, timeout: int = 900, env: dict[str, str] | None = None
):
    """Run an installed console script (``sweep``, ``sweep-lr-find``, ``sweep-report``)
    in ``cwd``, with ``env`` added to this process' environment."""
    exe = str(Path(sys.executable).parent / command)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def check_inputs(*argv: str) -> tuple[int, list[str]]:
    """In-process, what ``sweep ARGV`` does before Ray starts (compose, validate, load
    the data, check the task, objective and tracking backend): (exit code, 0 when
    accepted; the non-empty stderr lines)."""
    import io

    from search.cli import _guarded
    from search.config import check_command_line, compose_command_line, to_plain
    from search.driver import prepare
    from search.settings import load_settings

    def run() -> None:
        check_command_line(list(argv))
        prepare(load_settings(to_plain(compose_command_line(list(argv)))))

    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err):
        try:
            _guarded(run)
        except SystemExit as stop:
            code = int(stop.code or 0)
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


def trial_runs(client, experiment: str):
    """(every sweep parent run, the child runs of them all) of an experiment, through
    the package's one reader of a sweep's records (tracking.runs)."""
    from tracking.runs import child_runs, parent_runs

    exp = client.get_experiment_by_name(experiment)
    parents = parent_runs(client, exp.experiment_id)
    children = [c for p in parents for c in child_runs(client, exp.experiment_id, p.info.run_id)]
    return parents, children


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def documented_mlflow_server() -> list[str]:
    """The `mlflow server ...` command cluster.yaml starts on the head node (without its
    nohup and redirections): the tests run the documented command itself."""
    import shlex

    import yaml

    cluster = yaml.safe_load((Path(__file__).resolve().parents[1] / "cluster.yaml").read_text())
    (command,) = [c for c in cluster["head_setup_commands"] if "mlflow server" in c]
    words = shlex.split(command)
    words = words[words.index("mlflow") :]
    return words[: words.index(">")] if ">" in words else words


@contextlib.contextmanager
def mlflow_server(
    folder: Path,
    backend_uri: str,
    artifacts: Path | str | None = None,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """A real `mlflow server` on loopback over ``backend_uri`` (on ``port``, else a free
    one), its artifacts in ``artifacts`` (a folder, or an ``s3://`` URI with the store's
    credentials in ``env``); yields its URL and stops it (its whole process group) on
    exit."""
    port = port or free_port()
    args = [str(Path(sys.executable).parent / "mlflow"), *documented_mlflow_server()[1:]]
    values = {"--backend-store-uri": backend_uri, "--port": str(port)}
    values["--artifacts-destination"] = str(artifacts or folder / "mlartifacts")
    args = [values.get(args[i - 1], a) if i else a for i, a in enumerate(args)]
    args += ["--workers", "1"]
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    with served(args, folder / f"mlflow-server-{port}.log", healthy, cwd=folder, env=env):
        yield url


@contextlib.contextmanager
def served(
    args: list[str],
    log: Path,
    ready: Callable[[], bool],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    """A server process (its own process group, output in ``log``, ``env`` added to this
    process' environment), once ``ready()`` (within 90 s; its log's tail when it exits
    first); stopped, group and all, on exit."""
    with open(log, "a") as out:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 90
            while not ready():
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, f"{args[0]} did not come up"
                time.sleep(0.3)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
