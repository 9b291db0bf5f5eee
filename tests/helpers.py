"""Helpers for the slow tests that run the real command lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(command: str, cwd: Path, *args: str, timeout: int = 900):
    """Run an installed console script (``sweep``, ``sweep-lr-find``) in ``cwd``."""
    exe = str(Path(sys.executable).parent / command)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def trial_runs(client, experiment: str):
    """(parent runs, child runs) of an experiment."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sweep.role") == "parent"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children
