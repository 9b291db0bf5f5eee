"""Every private part of a library that dnn-sweep relies on, listed here with its guard:
a library upgrade that breaks one fails here, by name, not in a user's sweep.

- TensorFlow's ``ops.gradient_registry._registry`` and Keras'
  ``Optimizer._get_variable_index``: reached only through ``trainables/private_apis.py``
  (why: see there).
- Ray's ``ray_current_cluster`` file (``search.ray_runtime.recorded_cluster``): where
  ``ray start`` records its address for ``ray.init(address="auto")``; read to probe a
  stale record in seconds (``ray.init`` retries a dead address for minutes).

- Ray Tune's ``TuneController._schedule_trial_task`` and ``_resetting_trials``
  (``search.private_apis.mend_reset_failures``): a worker killed while Tune hands it the
  next trial would otherwise fail that trial for good.

- Tests only: ``ray.autoscaler._private.util.prepare_config/validate_config`` check that
  ``cluster.yaml`` is a config ``ray up`` accepts (tests/test_cluster_yaml.py; Ray has
  no public validator), and TensorFlow's ``func_graph`` counts traced graphs
  (tests/test_train_reuse.py).

Nothing else: the package uses Ray, Optuna and MLflow through public APIs only (the
last test checks the code for private names).
"""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_tensorflows_gradient_registry_holds_and_forgets_custom_gradients():
    import tensorflow as tf

    from trainables.private_apis import custom_gradients, forget_custom_gradients

    before = custom_gradients()

    @tf.custom_gradient
    def double(x):
        return 2 * x, lambda dy: 2 * dy

    tf.function(double).get_concrete_function(tf.TensorSpec([], tf.float32))
    added = custom_gradients() - before
    assert added, "tf.custom_gradient no longer registers in ops.gradient_registry._registry"
    forget_custom_gradients(before)
    assert custom_gradients() == before


def test_keras_optimizers_index_their_slots_by_variable():
    import keras

    from trainables.private_apis import variable_index

    a, b = keras.Variable(1.0), keras.Variable([1.0, 2.0])
    optimizer = keras.optimizers.SGD(momentum=0.9)
    optimizer.build([a, b])
    assert [variable_index(optimizer, v) for v in (a, b)] == [0, 1]
    assert optimizer.momentums[variable_index(optimizer, b)].shape == b.shape


@pytest.mark.slow
def test_ray_start_records_its_address_where_auto_reads_it(monkeypatch):
    import shutil
    import tempfile

    from search.ray_runtime import recorded_cluster
    from tests.cluster_helper import RayStartCluster

    short = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths: <= 107 bytes
    monkeypatch.setenv("RAY_TMPDIR", short)
    monkeypatch.delenv("TMPDIR", raising=False)
    assert recorded_cluster() is None
    cluster = RayStartCluster(cpus=1, worker=False)
    try:
        deadline = time.monotonic() + 30  # written after `ray start` prints its banner
        while recorded_cluster() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert recorded_cluster() == cluster.address
    finally:
        cluster.stop()
        shutil.rmtree(short, ignore_errors=True)


@pytest.mark.slow
def test_a_worker_killed_between_two_trials_costs_one_retry(tmp_path):
    """Kill the worker Tune caches for the next trial: that trial is retried once and
    completes (unmended, Ray 2.60 records it ERROR after a single kill)."""
    import os
    import signal

    from ray import tune

    from search.private_apis import mend_reset_failures
    from tests.conftest import local_ray

    class KillTheCachedWorker(tune.Callback):
        killed: list[int] = []

        def on_trial_complete(self, iteration, trials, trial, **info):
            if not self.killed:  # the worker is cached now, to be reset for trial 2
                self.killed.append(trial.last_result["pid"])
                os.kill(trial.last_result["pid"], signal.SIGKILL)
                time.sleep(1.0)

    def reporting_pid(config):  # local: pickled by value for the workers
        for epoch in range(2):
            tune.report({"epoch": epoch, "pid": os.getpid()})

    mend_reset_failures()
    with local_ray(1):
        grid = tune.Tuner(
            reporting_pid,
            param_space={"x": tune.grid_search([1, 2, 3])},
            tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=1),
            run_config=tune.RunConfig(
                storage_path=str(tmp_path),
                callbacks=[KillTheCachedWorker()],
                failure_config=tune.FailureConfig(max_failures=1),
                verbose=0,
            ),
        ).fit()
    assert KillTheCachedWorker.killed, "no worker was killed"
    assert [r.error for r in grid] == [None, None, None]
    assert sorted(r.metrics["epoch"] for r in grid) == [1, 1, 1]


def _private(name: str) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in name.split("."))


def _private_names(path: Path) -> set[str]:
    """Dotted names with a private part (``x._y``, ``from x._y import``) in a file."""
    tree, found = ast.parse(path.read_text()), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and _private(node.module):
            found.add(node.module)
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if _private(a.name)}
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.add(node.attr)
    return found


def test_private_apis_are_used_only_from_their_listed_home():
    """No other module of the package reaches a private name of a library."""
    ours = {"_RECORDER"}  # our own module-level private names, read in-module
    for folder in ("search", "trainables", "tracking"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "private_apis.py":
                continue
            names = _private_names(path) - ours
            assert not names, f"{path.relative_to(ROOT)} uses private names {sorted(names)}"
