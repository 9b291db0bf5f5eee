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
from tracking.secrets import MASK, mask, mask_tree

STATE_FILE = "dnn_sweep.json"
# The layout of what Tune pickles into a sweep's folder (the trainable and its
# TrialOptions, the searcher, the scheduler, the callbacks). Raise it with any change
# that renames or reshapes one of them: a folder of another format cannot be restored,
# and resume says so before Ray starts. 1: no stamp (before search/tune_trial.py).
STATE_FORMAT = 2


def write_state(folder: str, state: dict[str, Any]) -> None:
    """Write ``folder``'s state file atomically (a resume never reads a truncated one),
    its credentials masked (``with_secrets`` takes them from the resuming command)."""
    stamped = mask_tree({**state, "format": STATE_FORMAT})
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


def cluster_of(resume: bool, storage_path: str, name: str, address: str | None) -> str | None:
    """The Ray cluster a command joins (None: a local Ray of its own). A resume joins the
    one its sweep ran on (its stored ``cluster.address`` under ``cluster=remote``), and
    the caller must know it before importing Ray: whether Ray stays on loopback and
    whether token auth is on are read then, once. ``address``: this command's own."""
    if not resume:
        return address
    try:
        _, state = find_state(storage_path, name)
    except ConfigError:
        return address  # no such sweep: prepare says so, in its one line
    cluster = state["config"].get("cluster") or {}
    return cluster.get("address") if cluster.get("name") == "remote" else None


def with_secrets(stored: Any, now: Any, name: str, key: str = "") -> Any:
    """The stored config, each value that was masked taken from this command's config
    ``now`` where it is the same but for its credentials (a password, a token).

    Raises:
        ConfigError: naming the key whose credentials this command does not give.
    """
    if isinstance(stored, dict):
        mine = now if isinstance(now, dict) else {}
        return {
            k: with_secrets(v, mine.get(k), name, f"{key}.{k}".lstrip("."))
            for k, v in stored.items()
        }
    if isinstance(stored, list):
        mine = now if isinstance(now, list) and len(now) == len(stored) else [None] * len(stored)
        return [with_secrets(v, m, name, key) for v, m in zip(stored, mine, strict=True)]
    if not (isinstance(stored, str) and MASK in stored):
        return stored
    if isinstance(now, str) and mask(now) == stored:
        return now
    raise ConfigError(
        f"{key}={stored}: sweep '{name}' stored it without its credentials; give it again "
        f"with them (resume=true {key}=...)"
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
