"""Where a sweep came from, as MLflow's own run tags: the command, and the git commit of
the folder it ran in, so the UI's Source column says what code and config produced it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

from mlflow.utils.mlflow_tags import (
    MLFLOW_GIT_BRANCH,
    MLFLOW_GIT_COMMIT,
    MLFLOW_GIT_REPO_URL,
    MLFLOW_SOURCE_NAME,
    MLFLOW_SOURCE_TYPE,
    MLFLOW_USER,
)

from tracking.secrets import mask


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=5, cwd=os.getcwd()
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def source_tags() -> dict[str, str]:
    """``mlflow.source.*`` and ``mlflow.user`` for a run started by this process: the
    entry point (``sweep``, or the Python script) and, when the working folder is in a
    git repository, its commit, branch and remote."""
    import getpass

    entry = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    tags = {MLFLOW_SOURCE_NAME: entry, MLFLOW_SOURCE_TYPE: "LOCAL"}
    with contextlib.suppress(KeyError, OSError):
        tags[MLFLOW_USER] = getpass.getuser()
    for key, args in (
        (MLFLOW_GIT_COMMIT, ("rev-parse", "HEAD")),
        (MLFLOW_GIT_BRANCH, ("rev-parse", "--abbrev-ref", "HEAD")),
        (MLFLOW_GIT_REPO_URL, ("remote", "get-url", "origin")),
    ):
        value = _git(*args)
        if value:
            tags[key] = mask(value)
    return tags
