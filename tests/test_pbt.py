"""Population-based training end to end: the whole population runs at once, as PBT
assumes (Tune's asynchronous PBT compares a trial only with the live trials beside it;
with 2 of 4 at a time on a loaded machine, one trial could finish before its partner
reported, and nothing was ever exploited: seen in CI, 2026-12-01)."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import local_ray
from tests.test_algorithms import _sweep


@pytest.fixture(scope="module")
def population_ray():
    """A local Ray with 4 logical CPUs on whatever cores there are: the 4 trials of the
    population (1 CPU each) start together."""
    with local_ray(4):
        yield


@pytest.mark.slow
@pytest.mark.usefixtures("population_ray")
def test_pbt_hands_weights_and_new_learning_rates_on(tmp_path):
    """A PBT sweep (population drawn by NSGA-II's seeded sampler): some trial continues
    from another's checkpoint with a perturbed learning rate, its run says so (tag), and
    the rate it then trains with (the `lr` metric) is the new one."""
    import json

    _, children = _sweep(
        tmp_path,
        "pbt",
        "searcher=nsga2",
        "scheduler=pbt",
        "max_epochs=4",
        "scheduler.perturbation_interval=1",
        "scheduler.quantile_fraction=0.5",
        "scheduler.resample_probability=0",
        concurrent=4,
    )
    client = MlflowClient(f"sqlite:///{tmp_path / 'algo.db'}")
    handed = [
        (c, key, json.loads(value))
        for c in children
        for key, value in c.data.tags.items()
        if key.startswith("pbt.params_from_epoch_")
    ]
    assert handed, "PBT never exploited a trial"
    for child, key, params in handed:
        epoch = int(key.rsplit("_", 1)[1])
        history = client.get_metric_history(child.info.run_id, "lr")
        at_epoch = [m.value for m in history if m.step == epoch]
        # the branch after the hand-over trains with the new rate (an earlier branch of
        # the same trial may have reached this epoch with its own)
        assert any(v == pytest.approx(params["learning_rate"], rel=1e-5) for v in at_epoch)
