"""Hydra conventions: a user's config folder (-cd, --config-dir, hydra.searchpath) adds
options used like the shipped ones; -m expands to one job per combination; presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnn_sweep.errors import ConfigError
from search.config import _jobs, check_command_line, compose_command_line, compose_user

SPACE = """name: mine
params:
  n_hidden: {type: int, low: 1, high: 2}
  n_neurons: 16
"""
PRESET = """# @package _global_
defaults:
  - override /dataset: digits
  - override /search_space: mine
trials: 3
"""


@pytest.fixture
def myconf(tmp_path: Path) -> Path:
    (tmp_path / "myconf" / "search_space").mkdir(parents=True)
    (tmp_path / "myconf" / "search_space" / "mine.yaml").write_text(SPACE)
    (tmp_path / "myconf" / "experiment").mkdir()
    (tmp_path / "myconf" / "experiment" / "quick.yaml").write_text(PRESET)
    return tmp_path / "myconf"


@pytest.mark.parametrize("flag", ["-cd", "--config-dir"])
def test_a_users_folder_adds_options(myconf, flag):
    cfg = compose_command_line([flag, str(myconf), "search_space=mine", "dataset=digits"])
    assert cfg.search_space.name == "mine" and cfg.dataset.name == "digits"
    assert compose_user(["search_space=mine"], config_dir=str(myconf)).search_space.name == "mine"
    cfg = compose_command_line([f"{flag}={myconf}", "experiment=quick"])  # a preset of its own
    assert (cfg.search_space.name, cfg.dataset.name, cfg.trials) == ("mine", "digits", 3)


def test_hydra_searchpath_works_too_relative_paths_included(myconf, monkeypatch):
    monkeypatch.chdir(myconf.parent)
    cfg = compose_command_line(["hydra.searchpath=[file://myconf]", "search_space=mine"])
    assert cfg.search_space.name == "mine"
    check_command_line(["hydra.searchpath=[myconf]", "search_space=mine"])


def test_unknown_options_list_what_the_search_path_holds(myconf):
    with pytest.raises(ConfigError) as err:
        check_command_line(["search_space=mine"])
    assert str(err.value).startswith("search_space=mine: unknown option; allowed are deep_20x100")
    with pytest.raises(ConfigError) as err:
        check_command_line(["-cd", str(myconf), "search_space=yours"])
    assert "keras_tuner" in str(err.value) and "mine" in str(err.value)
    assert str(myconf) in str(err.value)  # says where the extra options come from


def test_multirun_expands_and_checks_every_job(myconf):
    jobs = list(_jobs(["search_space=mlp,mine", "seed=0,1", "trials=2"]))
    assert len(jobs) == 4 and ["search_space=mine", "seed=1", "trials=2"] in jobs
    check_command_line(["-m", "-cd", str(myconf), "search_space=mlp,mine", "seed=0,1"])
    with pytest.raises(ConfigError, match="search_space=nope: unknown option"):
        check_command_line(["-m", "search_space=mlp,nope"])
    with pytest.raises(ConfigError, match="Ambiguous value"):
        check_command_line(["search_space=mlp,keras_tuner"])  # a sweep needs -m


def test_shipped_presets_need_no_extra_override():
    cfg = compose_command_line(["experiment=five_by_100"])
    assert cfg.dataset.name == "digits" and list(cfg.dataset.classes) == [0, 1, 2, 3, 4]
    assert cfg.search_space.name == "five_by_100" and cfg.name == "five_by_100"
    assert compose_command_line(["experiment=five_by_100", "trials=2"]).trials == 2
    for preset in ("keras_tuner_seed", "deep_20x100"):
        assert compose_command_line([f"experiment={preset}"]).name == preset


def test_the_sweep_command_hands_its_users_folders_on(myconf):
    """What a sweep that starts another (transfer.pretrain) composes with: the user's
    folders as the running Hydra app sees them, not the packaged configs."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from search.config import conf_dir, hydra_user_searchpath

    other = myconf.parent / "other"
    other.mkdir()
    with initialize_config_dir(config_dir=conf_dir(), version_base=None):
        cfg = compose(
            "config",
            [f"hydra.searchpath=[file://{myconf},file://{other}]", "search_space=mine"],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    try:
        assert hydra_user_searchpath() == (f"file://{myconf}", f"file://{other}")
    finally:
        HydraConfig.instance().cfg = None  # as before: no Hydra app running
