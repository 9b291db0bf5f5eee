"""Safe defaults: what this project starts listens on loopback only, and configs never
name Python objects to import."""

from __future__ import annotations

import os

import pytest

from tests.conftest import ROOT


def test_local_ray_is_started_on_loopback(monkeypatch):
    """Local mode: Ray's node address and (if enabled) its dashboard are 127.0.0.1 unless
    the user opts in with cluster.dashboard_host. (Ray's gRPC servers still listen on all
    interfaces whatever the node address: see docs/reference.md, "Safe defaults".)"""
    import ray
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from search.cli import conf_dir
    from search.ray_runtime import start_ray
    from search.settings import Settings

    calls = []
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    with initialize_config_dir(config_dir=conf_dir(), version_base=None):
        cfg = compose("config", overrides=["dataset=digits"])
        opted = compose("config", overrides=["dataset=digits", "cluster.dashboard_host=0.0.0.0"])
    for composed in (cfg, opted):
        start_ray(Settings.from_config(OmegaConf.to_container(composed, resolve=True)))
    assert calls[0]["_node_ip_address"] == "127.0.0.1"
    assert calls[0]["dashboard_host"] == "127.0.0.1" and calls[0]["include_dashboard"] is False
    assert calls[1]["dashboard_host"] == "0.0.0.0"


def test_mlflow_ui_target_binds_loopback():
    makefile = (ROOT / "Makefile").read_text()
    line = next(ln for ln in makefile.splitlines() if "mlflow ui" in ln)
    assert "--host 127.0.0.1" in line


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("searcher", {"name": "tpe", "_target_": "os.system"}),
        ("scheduler", {"name": "asha", "_target_": "subprocess.call"}),
    ],
)
def test_config_never_instantiates_a_named_python_object(key, value):
    """A Hydra-style ``_target_`` is an unknown option, refused; nothing is imported."""
    from dnn_sweep.errors import ConfigError
    from search.algorithms import make_sampler, make_scheduler

    with pytest.raises(ConfigError, match=f"{key}._target_: unknown config key"):
        if key == "searcher":
            make_sampler(value, seed=0)
        else:
            make_scheduler(value, max_epochs=10)


@pytest.mark.parametrize("value", ["os.system", "builtins.eval", "keras.layers.Lambda"])
def test_activation_cannot_name_a_python_callable(value):
    from dnn_sweep.errors import ConfigError
    from search.space import SearchSpace

    with pytest.raises(ConfigError, match="search_space.params.activation"):
        SearchSpace.from_config({"name": "x", "params": {"activation": value}})


def test_dashboard_host_must_be_an_ip():
    from dnn_sweep.errors import ConfigError
    from search.schema import Cluster, validate

    for host in ("127.0.0.1", "0.0.0.0"):
        assert validate({"dashboard_host": host}, Cluster, "cluster").dashboard_host == host
    with pytest.raises(ConfigError, match="cluster.dashboard_host"):
        validate({"dashboard_host": "localhost; rm -rf /"}, Cluster, "cluster")


def test_dashboard_without_its_packages_is_a_config_error(monkeypatch):
    """The check reads ray[default]'s requirements from Ray's own metadata."""
    from importlib import metadata

    from dnn_sweep.errors import ConfigError
    from search.settings import _dashboard

    assert _dashboard(False) is False
    real = metadata.distribution

    def without_aiohttp(name: str):
        if name == "aiohttp":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", without_aiohttp)
    with pytest.raises(ConfigError, match=r"cluster.dashboard=true: .*aiohttp.*ray\[default\]"):
        _dashboard(True)


# Without the `cluster` extra (ray[default]) Ray starts no dashboard agent: it decides so
# by importing ray.dashboard.optional_deps, which needs these two of the extra's packages.
HIDE_EXTRA = """\
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("aiohttp_cors", "opencensus"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, _NotInstalled())
"""


@pytest.mark.slow
@pytest.mark.parametrize("extra", ["cluster extra", "no extra"])
def test_a_local_sweeps_ray_listens_on_loopback_only(tmp_path, extra):
    """docs/reference.md 'Safe defaults': Ray started as a local sweep starts it (after
    search.ray_runtime.loopback_only) has no listener off 127.0.0.1, so a neighbour on
    the network reaches none of its ports; and no dashboard. With the `cluster` extra
    installed (setup installs it: Ray then runs as ray[default]) and without it (its
    packages hidden from every process of Ray's, through a sitecustomize on PYTHONPATH,
    as if never installed: Ray sees a minimal install)."""
    import json
    import subprocess
    import sys

    from ray._private.utils import get_dashboard_dependency_error

    assert get_dashboard_dependency_error() is None, "setup installs the cluster extra"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PYTHONPATH"] = str(ROOT)
    if extra == "no extra":
        (tmp_path / "sitecustomize.py").write_text(HIDE_EXTRA)
        env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{ROOT}"
    probe = subprocess.Popen(
        [sys.executable, "-m", "tests.ray_ports_probe"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        seen = json.loads(probe.stdout.readline())
        ips = {x["ip"].removeprefix("::ffff:") for x in seen["listeners"]}
        assert seen["listeners"] and ips == {"127.0.0.1"}, seen
        assert {"gcs_server", "raylet"} <= {x["process"] for x in seen["listeners"]}, seen
        assert not [x for x in seen["listeners"] if x["port"] == 8265]  # no dashboard
        assert seen["minimal"] == (extra == "no extra"), seen  # as Ray saw its install
    finally:
        probe.stdin.write("\n")
        probe.stdin.flush()
        probe.wait(timeout=60)


def test_loopback_only_is_set_before_ray_and_for_local_sweeps_only(monkeypatch):
    import sys

    from search.ray_runtime import loopback_only

    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", raising=False)
    assert loopback_only(local=False) is False  # a cluster join needs Ray's default
    monkeypatch.setitem(sys.modules, "ray", object())  # Ray imported already: too late
    assert loopback_only(local=True) is False
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ  # never left for children
