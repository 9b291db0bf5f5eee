"""cluster.yaml passes Ray's own autoscaler config validation."""

from __future__ import annotations

import copy
import subprocess
import tomllib

import yaml

from tests.conftest import ROOT


def test_cluster_yaml_passes_ray_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    types = config["available_node_types"]
    assert config["head_node_type"] == "head"
    assert types["gpu_worker"]["max_workers"] >= types["gpu_worker"]["min_workers"] >= 1
    head, workers = config["head_setup_commands"], config["worker_setup_commands"]
    assert any(c.endswith('pip install --quiet ".[cluster]"') for c in head)
    assert any(c.endswith('pip install --quiet ".[gpu,cluster]"') for c in workers)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(r.startswith("tensorflow[and-cuda]") for r in extras["gpu"])
    assert any(r.startswith("ray[default]") for r in extras["cluster"])
    assert any(target.endswith("/conf") for target in config["file_mounts"])


def test_no_server_listens_on_the_network_without_auth():
    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    commands = [c for key, cs in raw.items() if key.endswith("commands") for c in cs]
    for command in commands:
        if "0.0.0.0" in command:
            assert "basic-auth" in command, command
    (mlflow,) = [c for c in commands if "mlflow server" in c]
    assert "--host 127.0.0.1" in mlflow and "--serve-artifacts" in mlflow
    assert any("--dashboard-host=127.0.0.1" in c for c in commands)


def test_validation_really_checks():
    import pytest
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    raw["available_node_types"]["gpu_worker"]["max_workers"] = "many"
    with pytest.raises(Exception):  # noqa: B017 - jsonschema's ValidationError
        validate_config(prepare_config(raw))


def _raw() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_every_ray_start_requires_the_clusters_token():
    raw = _raw()
    starts = [
        c for key in ("head_start_ray_commands", "worker_start_ray_commands") for c in raw[key]
    ]
    starts = [c for c in starts if "ray start" in c]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token ray start" in c for c in starts)
    # the token comes from the laptop's home, never from this repository
    assert raw["file_mounts"]["/home/ubuntu/.ray/auth_token"] == "~/.ray/auth_token"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [f for f in tracked if f.endswith(("auth_token", "cluster.env"))]


def test_no_node_gets_rays_default_security_group_or_role():
    """Given groups and profiles, Ray's AWS provider makes none of its own (its default
    group opens SSH to 0.0.0.0/0; its default role has EC2 and S3 full access)."""
    for name, node in _raw()["available_node_types"].items():
        config = node["node_config"]
        assert config["SecurityGroupIds"], name
        assert "instance-profile/dnn-sweep-" in config["IamInstanceProfile"]["Arn"], name


def test_records_live_where_ray_down_does_not_reach():
    raw = _raw()
    commands = [c for key, cs in raw.items() if key.endswith("commands") for c in cs]
    (mlflow,) = [c for c in commands if "mlflow server" in c]
    assert "sqlite" not in mlflow and '--backend-store-uri "$DNN_SWEEP_MLFLOW_DB"' in mlflow
    assert '--artifacts-destination "s3://$DNN_SWEEP_BUCKET/' in mlflow
    header = (ROOT / "cluster.yaml").read_text().split("cluster_name:")[0]
    assert "DNN_SWEEP_MLFLOW_DB=postgresql://" in header
    assert "DNN_SWEEP_STUDY_DB=postgresql://" in header
    assert "'study.storage=${oc.env:DNN_SWEEP_STUDY_DB}'" in header
    assert "ray.storage_path=s3://" in header
