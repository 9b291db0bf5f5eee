"""What `sweep resume=true` needs, stored beside Ray Tune's own experiment state.

A sweep's Tune folder (``storage_path/<name>-<timestamp>``) gets ``dnn_sweep.json``: the
resolved config, the learning-rate suggestion it used, and its MLflow parent run. Resume
finds the newest such folder for the name and continues it with the same config.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dnn_sweep.errors import ConfigError
from search import storage

STATE_FILE = "dnn_sweep.json"
# The layout of what Tune pickles into a sweep's folder (the trainable and its
# TrialOptions, the searcher, the scheduler, the callbacks). Raise it with any change
# that renames or reshapes one of them: a folder of another format cannot be restored,
# and resume says so before Ray starts. 1: no stamp (before search/tune_trial.py).
STATE_FORMAT = 2


def write_state(folder: str, state: dict[str, Any]) -> None:
    """Write ``folder``'s state file atomically (a resume never reads a truncated one)."""
    stamped = {**state, "format": STATE_FORMAT}
    storage.write_text(storage.join(folder, STATE_FILE), json.dumps(stamped, indent=2, default=str))


def find_state(storage_path: str, name: str) -> tuple[str, dict[str, Any]]:
    """The newest sweep folder for ``name`` (matched exactly, whatever characters it
    holds) under ``storage_path`` (a folder or a URI) and its state.

    Raises:
        ConfigError: when there is no sweep of that name to resume.
    """
    pattern = re.compile(re.escape(name) + r"-\d{8}-\d{6}")
    for run in reversed([f for f in storage.folders(storage_path) if pattern.fullmatch(f)]):
        folder = storage.join(storage_path, run)
        text = storage.read_text(storage.join(folder, STATE_FILE))
        if text is not None:
            return folder, _checked(json.loads(text), folder, name)
    raise ConfigError(
        f"resume=true name={name}: no sweep of that name under ray.storage_path={storage_path}"
    )


def _checked(state: dict[str, Any], folder: str, name: str) -> dict[str, Any]:
    if state.get("format", 1) != STATE_FORMAT:
        raise ConfigError(
            f"resume=true name={name}: {folder} was written by another dnn-sweep version "
            f"(state format {state.get('format', 1)}, this one resumes {STATE_FORMAT}); "
            f"its trials stay in MLflow: start a new sweep with warm_start={name} to "
            "build on them"
        )
    return state
