"""The config schema (search/schema.py): the one home of every default, and its
one-line errors."""

from __future__ import annotations

import pytest

from dnn_sweep.errors import ConfigError
from search.config import compose, to_plain
from search.schema import GROUPS, SweepConfig, validate


def test_the_composed_defaults_are_the_schemas():
    """Hydra composes the root keys from the schema's defaults: with no override, the
    config holds exactly them, and validates to a config equal to the schema's own."""
    composed = to_plain(compose([]))
    checked = validate(composed)
    for key, field in SweepConfig.model_fields.items():
        if key in GROUPS:
            continue
        default = field.default
        expected = default.model_dump() if hasattr(default, "model_dump") else default
        assert composed[key] == expected, key
        assert getattr(checked, key) == default, key


def test_the_groups_default_options_are_the_schemas():
    """conf/config.yaml's defaults list picks the options the schema defaults to."""
    composed = to_plain(compose([]))
    for group in ("searcher", "scheduler", "cluster", "tracking"):
        assert composed[group] == SweepConfig.model_fields[group].default.model_dump(), group


def test_every_shipped_preset_validates():
    from search.config import _hydra, _options

    with _hydra():
        presets = _options("experiment", [])
    assert presets
    for preset in presets:
        validate(to_plain(compose([f"experiment={preset}"])))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trials": "8"}, "trials='8': must be an integer"),
        ({"trials": True}, "trials=True: must be an integer"),
        ({"time_budget_s": 0}, "time_budget_s=0: must be a number > 0"),
        ({"trial": {"cpus": 1, "gpus": 1.5}}, "trial.gpus=1.5: above 1, GPUs per trial must"),
        ({"trial": {"cpu": 1}}, "trial.cpu: unknown config key; did you mean trial.cpus?"),
        ({"ensemble": {"size": 0}}, "ensemble.size=0: must be an integer > 0"),
        ({"searcher": {"name": "tpe", "n_startup": 3}}, "searcher.n_startup: unknown config"),
        ({"searcher": {}}, "searcher.name=None: allowed are tpe, random, cmaes, gp, qmc, nsga2"),
        ({"scheduler": {"name": "pbt", "mutate": []}}, "scheduler.mutate=[]: must be a non-empty"),
        ({"lr_find": {"min_lr": 1.0, "max_lr": 0.1}}, "lr_find.min_lr=1.0: must be below"),
        ({"cluster": {"name": "remote"}}, "cluster.address: cluster=remote needs auto"),
        ({"study": {"storage": "optuna.db"}}, "study.storage='optuna.db': must be an RDB URL"),
        ({"objectives": ["val_accuracy:max"]}, "objectives=['val_accuracy:max']: must be a list"),
        ({"objectives": ["n_params:min", "val_loss:min"]}, "objectives: 'n_params:min': the first"),
        ({"tensorboard": {"profile_batch": "1-2"}}, "tensorboard.profile_batch='1-2': must be"),
        ({"name": " "}, "name=' ': must be non-empty"),
        ({"name": "exp:1"}, "name='exp:1': must not hold ':'"),
        ({"name": "it's"}, 'name="it\'s": must not hold "\'"'),
        ({"name": "..x"}, "name='..x': must not start with '.'"),
        ({"name": "a/b"}, "name='a/b': must not hold '/'"),
        ({"name": "x" * 251}, "name='" + "x" * 251 + "': at most 250"),
        ({"warm_start": "a:b"}, "warm_start='a:b': must not hold ':'"),
        ({"tracking": {"registered_model": "m/1"}}, "tracking.registered_model='m/1': must not"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_full_key(change, message):
    """The path a stored config (resume) or the Python API takes: pydantic's first
    error, as one line."""
    raw = {**to_plain(compose(["dataset=digits"])), **change}
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["exp[1]", "my sweep", "v1.2", "digits-0to4", "x_y", "é"])
def test_names_mlflow_takes_pass(name):
    validate({**to_plain(compose(["dataset=digits"])), "name": name})


def test_a_data_file_whose_name_cannot_name_the_sweep_says_give_one():
    from search.schema import sweep_name

    with pytest.raises(ConfigError, match=r"dataset.path=it:s.csv: its name 'it:s' cannot"):
        sweep_name({"dataset": {"path": "it:s.csv"}})
    assert sweep_name({"dataset": {"path": "it:s.csv"}, "name": "ok"}) == "ok"
