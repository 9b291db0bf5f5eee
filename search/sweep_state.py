"""What `sweep resume=true` needs, stored beside Ray Tune's own experiment state.

A sweep's Tune folder (``storage_path/<name>-<timestamp>``) gets ``dnn_sweep.json``: the
resolved config, the learning-rate suggestion it used, and its MLflow parent run. Resume
finds the newest such folder for the name and continues it with the same config.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dnn_sweep.errors import ConfigError

STATE_FILE = "dnn_sweep.json"
# The layout of what Tune pickles into a sweep's folder (the trainable and its
# TrialOptions, the searcher, the scheduler, the callbacks). Raise it with any change
# that renames or reshapes one of them: a folder of another format cannot be restored,
# and resume says so before Ray starts. 1: no stamp (before search/tune_trial.py).
STATE_FORMAT = 2


def write_state(folder: str, state: dict[str, Any]) -> None:
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    stamped = {**state, "format": STATE_FORMAT}
    (path / STATE_FILE).write_text(json.dumps(stamped, indent=2, default=str))


def find_state(storage_path: str, name: str) -> tuple[str, dict[str, Any]]:
    """The newest sweep folder for ``name`` and its state.

    Raises:
        ConfigError: when there is no sweep of that name to resume.
    """
    root = Path(storage_path)
    pattern = re.compile(re.escape(name) + r"-\d{8}-\d{6}")
    candidates = sorted(
        (
            p
            for p in root.glob(f"{name}-*")
            if pattern.fullmatch(p.name) and (p / STATE_FILE).is_file()
        ),
        key=lambda p: p.name,
    )
    if not candidates:
        raise ConfigError(
            f"resume=true name={name}: no sweep of that name under ray.storage_path={root}"
        )
    folder = candidates[-1]
    state = json.loads((folder / STATE_FILE).read_text())
    if state.get("format", 1) != STATE_FORMAT:
        raise ConfigError(
            f"resume=true name={name}: {folder} was written by another dnn-sweep version "
            f"(state format {state.get('format', 1)}, this one resumes {STATE_FORMAT}); "
            f"its trials stay in MLflow: start a new sweep with warm_start={name} to "
            "build on them"
        )
    return str(folder), state
