"""The tensorboard config group: off by default, validated, one folder per sweep."""

from __future__ import annotations

import pytest

from dnn_sweep.errors import ConfigError
from search.schema import Tensorboard, validate
from search.settings import _tensorboard


def checked(options: dict, name: str = "s"):
    return _tensorboard(validate(options, Tensorboard, "tensorboard"), name)


def test_off_by_default():
    assert checked({}) is None
    assert checked({"enabled": False, "log_dir": "x"}) is None


def test_enabled_gives_an_absolute_folder_per_sweep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tb = checked({"enabled": True, "log_dir": "tb", "profile_batch": "10,20"}, "demo")
    assert tb == {"log_dir": f"{tmp_path}/tb/demo", "histogram_freq": 0, "profile_batch": "10,20"}


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"enabled": "yes"}, "tensorboard.enabled"),
        ({"enabled": True, "log_dir": ""}, "tensorboard.log_dir"),
        ({"enabled": True, "log_dir": "x", "histogram_freq": -1}, "tensorboard.histogram_freq"),
        ({"enabled": False, "profile_batch": "a-b"}, "tensorboard.profile_batch"),
    ],
)
def test_bad_options_name_the_key(options, key):
    """Checked even when off: a typo is not silently kept for later."""
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        checked(options)


@pytest.mark.slow
def test_train_writes_tensorboard_events(tmp_path):
    from trainables.data import load_dataset
    from trainables.task import Objective
    from trainables.train import train

    data = load_dataset({"name": "digits", "validation_size": 200, "test_size": 200}, 0)
    seen = []
    train(
        {"n_hidden": 1, "n_neurons": 8},
        data,
        max_epochs=2,
        objective=Objective("val_accuracy", "max"),
        on_epoch_end=lambda e, m, model, last: seen.append(e),
        tensorboard={"log_dir": str(tmp_path / "tb"), "histogram_freq": 1, "profile_batch": 0},
    )
    assert seen == [1, 2]
    assert list((tmp_path / "tb" / "train").glob("events.out.tfevents.*"))
    assert list((tmp_path / "tb" / "validation").glob("events.out.tfevents.*"))
