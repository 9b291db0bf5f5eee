"""Shared fixtures: config files, composed configs, and paths for CLI runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


@pytest.fixture
def space_config():
    """Load a shipped search space YAML as the dict Hydra would compose."""

    def load(name: str) -> dict[str, Any]:
        return yaml.safe_load((CONF / "search_space" / f"{name}.yaml").read_text())

    return load


@pytest.fixture
def sweep_bin() -> str:
    """The installed `sweep` console script of the interpreter running the tests."""
    path = Path(sys.executable).parent / "sweep"
    assert path.exists(), f"`sweep` not installed next to {sys.executable}: pip install ."
    return str(path)


@pytest.fixture
def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env
