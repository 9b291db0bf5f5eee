"""Shared fixtures: config files, composed configs, and paths for CLI runs."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# `make test-fast`: the tier without Ray and without training (tests needing either are
# marked slow); the guard below makes that a checked rule, not a hope.
FAST = os.environ.get("DNN_SWEEP_TEST_FAST") == "1"
# The docs test: one long chain of commands, each step reading what the last left.
DOCS_MODULE = "test_docs_run.py"


def pytest_collection_modifyitems(config, items):
    """For ``make test`` (pytest-xdist: ``-n 2 --dist loadscope --no-loadscope-reorder``,
    each test module whole on one worker, its module-scoped Ray and folders made once):
    the docs test, the longest chain, goes first, so the other worker takes the rest
    beside it. The suite is a string of small sweeps whose serial phases (imports, Ray's
    and MLflow's start, the final phase) leave a core idle; two at once fill it."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.path.name != DOCS_MODULE)


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_guard():
    """In the fast tier, starting Ray or training a Keras model fails the test, naming
    the fix (mark it slow)."""
    if not FAST:
        yield
        return
    import keras
    import ray

    def refuse(what: str):
        def call(*args, **kwargs):
            raise AssertionError(f"fast tier: {what} in a test not marked slow")

        return call

    saved = keras.Model.fit, ray.init
    keras.Model.fit, ray.init = refuse("keras.Model.fit"), refuse("ray.init")
    yield
    keras.Model.fit, ray.init = saved


@pytest.fixture(autouse=True)
def _own_working_folder(tmp_path_factory, monkeypatch):
    """Every test runs in a fresh, empty working folder: defaults such as
    ``sqlite:///mlflow.db`` and ``ray_results/`` then never read or write the records a
    user's own ``make sweep`` left in the checkout."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


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


ACCEPTANCE_TRIALS, ACCEPTANCE_EPOCHS = 6, 3


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory):
    """Issue 2's acceptance command (digits, the seed's Keras Tuner space, 6 trials x 3
    epochs), with per-trial TensorBoard logs on; run once, read by several test files.
    Once per run under pytest-xdist too: the first worker to ask runs it in the folder
    the workers share, the other waits on a file lock and reads it."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # above each worker's own folder
    work, printed = shared / "finished-sweep", shared / "finished-sweep.out"
    with FileLock(str(shared / "finished-sweep.lock")):
        if not printed.exists():
            work.mkdir(exist_ok=True)
            printed.write_text(_run_acceptance_sweep(work))
    return work, printed.read_text()


def _run_acceptance_sweep(work: Path) -> str:
    import subprocess

    sweep = str(Path(sys.executable).parent / "sweep")
    cmd = [
        sweep,
        "dataset=digits",
        "search_space=keras_tuner",
        f"trials={ACCEPTANCE_TRIALS}",
        f"max_epochs={ACCEPTANCE_EPOCHS}",
        "max_concurrent=2",
        "seed=0",
        "name=acc",
        "tracking.uri=sqlite:///acc.db",
        "ray.storage_path=ray_results",
        "tensorboard.enabled=true",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@contextlib.contextmanager
def local_ray(cpus: int) -> Iterator[None]:
    """A new local Ray of ``cpus`` logical CPUs in this process (never one a test before
    left recorded), shut down on exit."""
    import ray

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def shared_ray():
    """One local Ray for a module's in-process sweeps (``run_sweep`` uses a Ray this
    process already runs, and leaves it running)."""
    with local_ray(os.cpu_count() or 1):
        yield
