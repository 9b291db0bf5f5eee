"""The stored Optuna study: warm-start checks, a resume that adds trials to a finished
sweep (same parent run, same study, a new model version), a warm-started sweep, and
optuna-dashboard opening the storage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from dnn_sweep.errors import ConfigError
from search.space import SearchSpace
from search.study import StudyRef, open_study, warm_start_trials, warm_trials
from tests.helpers import free_port, trial_runs
from trainables.task import Objective

ACCURACY = [("val_accuracy", "max")]  # what a study optimizes


def _earlier(tmp_path, space, n=6, seed=0, objective=ACCURACY):
    """A stored study of sweep 'old' with n finished trials of ``space``."""
    ref = StudyRef("old-20261130-120000", f"sqlite:///{tmp_path / 'optuna.db'}")
    open_study(ref, objective, space)
    study = optuna.load_study(study_name=ref.name, storage=ref.storage)
    study.sampler = optuna.samplers.RandomSampler(seed=seed)
    for i in range(n):
        trial = study.ask()
        space.define_by_run(trial)
        study.tell(trial, 0.1 * i)
    return ref


def test_warm_trials_replay_conditional_and_per_layer_params(tmp_path, space_config):
    """default_dnn has per-layer and conditional params: each earlier trial comes back
    with the current space's distributions for exactly its own params."""
    space = SearchSpace.from_config(space_config("default_dnn"))
    ref = _earlier(tmp_path, space)
    trials = warm_trials(ref, space, ACCURACY)
    old = optuna.load_study(study_name=ref.name, storage=ref.storage).get_trials()
    assert [t.params for t in trials] == [t.params for t in old]
    assert [t.value for t in trials] == [t.value for t in old]
    for t in trials:
        assert set(t.distributions) == set(t.params)


def test_warm_start_names_a_param_outside_the_space(tmp_path, space_config):
    raw = space_config("keras_tuner")
    ref = _earlier(tmp_path, SearchSpace.from_config(raw))
    raw["params"]["n_neurons"]["high"] = 17
    narrow = SearchSpace.from_config(raw)
    with pytest.raises(
        ConfigError, match=r"warm_start=old: trial \d+ has params outside .*n_neurons="
    ):
        warm_trials(ref, narrow, ACCURACY)
    del raw["params"]["optimizer"]
    with pytest.raises(ConfigError, match=r"optimizer \(not in this space\)"):
        warm_trials(ref, SearchSpace.from_config(raw), ACCURACY)


def test_warm_start_refuses_another_objective_and_unknown_sweeps(tmp_path, space_config):
    space = SearchSpace.from_config(space_config("keras_tuner"))
    ref = _earlier(tmp_path, space)
    with pytest.raises(ConfigError, match="that sweep optimized val_accuracy:max, this one"):
        warm_trials(ref, space, [("val_loss", "min")])
    new = StudyRef("new-20261130-130000", ref.storage)
    with pytest.raises(ConfigError, match="warm_start=nosuch: no study of a sweep of that name"):
        warm_start_trials(new, ACCURACY, space, "nosuch")
    elsewhere = StudyRef(new.name, f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(ConfigError, match="warm_start=old: no study"):
        warm_start_trials(elsewhere, ACCURACY, space, "old")
    assert not (tmp_path / "none.db").exists()  # checking never creates a storage
    assert open_study(new, ACCURACY, space, warm_start_trials(new, ACCURACY, space, "old")) == 6


def _sweep(tmp_path, *overrides):
    from dnn_sweep import run_sweep

    lines: list[str] = []
    summary = run_sweep(
        [
            "dataset=digits",
            "search_space=keras_tuner",
            "max_epochs=1",
            "max_concurrent=2",
            f"tracking.uri=sqlite:///{tmp_path / 'm.db'}",
            f"ray.storage_path={tmp_path / 'ray_results'}",
            *overrides,
        ],
        echo=lines.append,
    )
    return summary, lines


@pytest.mark.slow
@pytest.mark.usefixtures("shared_ray")
def test_resume_adds_trials_to_a_finished_sweep_and_warm_start_reads_it(tmp_path):
    first, _ = _sweep(tmp_path, "trials=3", "name=grow")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"  # beside the tracking store
    (study_name,) = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    assert study_name.startswith("grow-")

    with pytest.raises(ConfigError, match="trials=2: sweep 'grow' has planned 3 trials"):
        _sweep(tmp_path, "trials=2", "name=grow", "resume=true")
    grown, lines = _sweep(tmp_path, "trials=5", "name=grow", "resume=true")
    assert grown.parent_run_id == first.parent_run_id
    assert any("adding 2 trials" in line for line in lines)
    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    (parent,), children = trial_runs(client, "grow")
    assert len(children) == 5 and parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_planned"] == 5
    study = optuna.load_study(study_name=study_name, storage=storage)
    assert len(study.get_trials()) == 5
    assert len({json.dumps(t.params, sort_keys=True) for t in study.get_trials()}) == 5
    versions = client.search_model_versions("name = 'grow'")
    assert sorted(v.tags["sweep.round"] for v in versions) == ["1", "2"]
    assert grown.model_uri == "models:/grow/2"
    best = max(c.data.metrics["val_accuracy"] for c in children)  # last epoch's, <= best
    assert grown.best_value >= best

    warm, lines = _sweep(tmp_path, "trials=1", "name=later", "warm_start=grow")
    assert any("warm start: 5 finished trials of sweep 'grow'" in line for line in lines)
    (later,), _ = trial_runs(client, "later")
    assert later.data.params["warm_start.trials"] == "5"
    new_study = optuna.load_study(study_name=later.data.params["study.name"], storage=storage)
    states = [t.state for t in new_study.get_trials()]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 6


def test_optuna_dashboard_opens_the_stored_study(tmp_path, space_config):
    ref = _earlier(tmp_path, SearchSpace.from_config(space_config("keras_tuner")))
    port = free_port()
    exe = str(Path(sys.executable).parent / "optuna-dashboard")
    server = subprocess.Popen(
        [exe, ref.storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, body = time.monotonic() + 60, None
        while body is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as r:
                    body = json.load(r)
            except OSError:
                time.sleep(0.5)
        assert body is not None, "optuna-dashboard did not answer"
        (study,) = body["study_summaries"]
        assert study["study_name"] == ref.name
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("stored_class", [True, False])
def test_a_searcher_restored_behind_its_stored_study_goes_on(tmp_path, space_config, stored_class):
    """A killed driver's snapshot can predate the study: the restored searcher reports
    for a trial the study finished already. Ours drops that report; Tune's own class
    (the control) raises, which ended resumed sweeps."""
    from ray.tune.search.optuna import OptunaSearch

    from search.algorithms import make_searcher

    space = SearchSpace.from_config(space_config("keras_tuner"))
    ref = StudyRef("snap-20261130-120000", f"sqlite:///{tmp_path / 'optuna.db'}")
    open_study(ref, ACCURACY, space)
    searcher = make_searcher(
        space, {"name": "tpe"}, 0, 2, Objective("val_accuracy", "max"), ref
    ).searcher
    searcher.suggest("t0")
    searcher.on_trial_result("t0", {"val_accuracy": 0.3, "training_iteration": 1})
    searcher.save(str(tmp_path / "snapshot.pkl"))  # Tune's snapshot, then the kill...
    searcher.on_trial_complete("t0", {"val_accuracy": 0.5})  # ...just after the tell
    if not stored_class:
        searcher.__class__ = OptunaSearch
    searcher.restore(str(tmp_path / "snapshot.pkl"))
    report = {"val_accuracy": 0.6, "training_iteration": 2}
    if stored_class:
        searcher.on_trial_result("t0", report)
    else:
        with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
            searcher.on_trial_result("t0", report)
