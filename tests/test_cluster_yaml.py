"""cluster.yaml passes Ray's own autoscaler config validation."""

from __future__ import annotations

import copy

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
    assert any("pip install" in c for c in config["setup_commands"])
    assert any(target.endswith("/conf") for target in config["file_mounts"])


def test_validation_really_checks():
    import pytest
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    raw["available_node_types"]["gpu_worker"]["max_workers"] = "many"
    with pytest.raises(Exception):  # noqa: B017 - jsonschema's ValidationError
        validate_config(prepare_config(raw))
