"""The registry's rules without a sweep: @champion moves only to a better score on the
same test set, @latest-sweep always; versions of one name share their inputs."""

from __future__ import annotations

import pytest


@pytest.fixture
def client(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _version(client, tmp_path, score, inputs="abc") -> str:
    """A version registered as a sweep registers it (a LoggedModel of a run)."""
    from tracking.registry import INPUTS_TAG, check_inputs, log_logged_model, promote, register

    check_inputs(client, "m", inputs, "digits")
    exp = client.get_experiment_by_name("e") or client.get_experiment(client.create_experiment("e"))
    run_id = client.create_run(exp.experiment_id).info.run_id

    def save(path, mlflow_model):
        import os

        os.makedirs(path)
        mlflow_model.save(os.path.join(path, "MLmodel"))

    tags = {INPUTS_TAG: inputs, **(score.tags() if score else {})}
    logged = log_logged_model(client, run_id, "model", save, tags)
    version = register(client, "m", logged, tags)
    promote(client, "m", version, score)
    return version


def _alias(client, alias: str) -> str:
    return str(client.get_model_version_by_alias("m", alias).version)


def test_champion_moves_only_to_a_better_score_on_the_same_test_set(client, tmp_path):
    from tracking.registry import HeldOutScore

    def acc(value: float, digest: str = "d1") -> HeldOutScore:
        return HeldOutScore("accuracy", "max", value, digest)

    assert _version(client, tmp_path, acc(0.90)) == "1"
    assert _alias(client, "champion") == _alias(client, "latest-sweep") == "1"
    _version(client, tmp_path, acc(0.85))  # worse: champion stays
    assert (_alias(client, "champion"), _alias(client, "latest-sweep")) == ("1", "2")
    assert "stays on version 1" in client.get_model_version("m", "2").tags["champion.decision"]
    _version(client, tmp_path, acc(0.99, digest="d2"))  # another test set: not compared
    assert (_alias(client, "champion"), _alias(client, "latest-sweep")) == ("1", "3")
    assert "another test set" in client.get_model_version("m", "3").tags["champion.decision"]
    _version(client, tmp_path, acc(0.91))  # better on the same test set: moves
    assert _alias(client, "champion") == _alias(client, "latest-sweep") == "4"


def test_a_lower_loss_is_better_when_the_mode_is_min(client, tmp_path):
    from tracking.registry import HeldOutScore

    _version(client, tmp_path, HeldOutScore("rmse", "min", 2.0, "d"))
    _version(client, tmp_path, HeldOutScore("rmse", "min", 1.5, "d"))
    assert _alias(client, "champion") == "2"


def test_versions_of_one_name_share_their_inputs(client, tmp_path):
    from dnn_sweep.errors import ConfigError

    _version(client, tmp_path, None, inputs="abc")
    with pytest.raises(ConfigError, match=r"tracking.registered_model=m: .*=m-digits$"):
        _version(client, tmp_path, None, inputs="xyz")
