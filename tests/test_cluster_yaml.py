"""cluster.yaml passes Ray's own autoscaler config validation."""

from __future__ import annotations

import copy
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
