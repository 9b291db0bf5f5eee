"""Property: any malformed search space is refused the way the CLI promises.

Hypothesis builds a valid base space, then breaks it in one of many ways (bounds,
log scales, types, names, choices, conditions, fixed values). Each broken config goes
through the same path as `sweep` after Hydra composed it (``search.cli._guarded`` around
``load_settings``) and must end with exit status 2 and exactly one stderr line that names
the offending ``search_space.params.<name>`` key, with no traceback, and Ray never started.
"""

from __future__ import annotations

import contextlib
import copy
import io
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainables.params import PARAMS

NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12)
UNKNOWN_NAME = NAME.filter(lambda s: s not in PARAMS and not s.startswith("_"))
NUMBER = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
JUNK = st.one_of(NAME, st.integers(-5, 5).map(lambda i: f"x{i}"), st.just("Relu"))


@pytest.fixture(scope="module")
def base_config() -> dict[str, Any]:
    """The composed default config (digits, the seed's space) as a plain dict."""
    from search.config import compose, to_plain

    return to_plain(compose(["dataset=digits", "search_space=keras_tuner"]))


def _bad_bounds(draw) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["int_order", "float_order", "log_low", "int_frac", "int_log"]))
    if kind == "int_order":
        low = draw(st.integers(2, 100))
        return "n_neurons", {"type": "int", "low": low, "high": draw(st.integers(1, low - 1))}
    if kind == "float_order":
        high = draw(st.floats(1e-6, 0.5))
        low = draw(st.floats(high * 1.01 + 1e-9, 1.0))
        return "learning_rate", {"type": "float", "low": low, "high": high}
    if kind == "log_low":
        low = draw(st.floats(-1.0, 0.0))
        return "learning_rate", {"type": "float", "low": low, "high": 0.1, "log": True}
    if kind == "int_frac":
        low = draw(st.integers(0, 5)) + draw(st.sampled_from([0.5, 0.25, 0.1]))
        return "n_hidden", {"type": "int", "low": low, "high": 8}
    return "n_neurons", {"type": "int", "low": draw(st.integers(-5, 0)), "high": 64, "log": True}


def _bad_names(draw) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["activation", "initializer", "lr_schedule", "optimizer"]))
    junk = draw(JUNK)
    if kind == "optimizer":
        return "optimizer", {"type": "categorical", "choices": ["sgd", junk]}
    if draw(st.booleans()):
        return kind, junk
    return kind, {"type": "categorical", "choices": [junk]}


def _bad_structure(draw) -> tuple[str, Any]:
    kind = draw(
        st.sampled_from(
            ["empty", "unknown_param", "type", "missing", "extra_key", "not_number", "log_flag"]
        )
    )
    if kind == "empty":
        return "optimizer", {"type": "categorical", "choices": []}
    if kind == "unknown_param":
        return draw(UNKNOWN_NAME), draw(st.one_of(NUMBER, NAME))
    if kind == "type":
        return "n_neurons", {"type": draw(NAME), "low": 1, "high": 4}
    if kind == "missing":
        return "n_neurons", {"type": "int", draw(st.sampled_from(["low", "high"])): 8}
    if kind == "extra_key":
        return "n_neurons", {"type": "int", "low": 1, "high": 4, draw(UNKNOWN_NAME): 1}
    if kind == "not_number":
        return "learning_rate", {"type": "float", "low": draw(NAME), "high": 0.1}
    return "learning_rate", {"type": "float", "low": 1e-4, "high": 0.1, "log": draw(NAME)}


def _bad_condition(draw) -> tuple[str, Any]:
    spec = {"type": "float", "low": 0.1, "high": 0.9}
    if draw(st.booleans()):  # names a hyperparameter nobody declared
        return "momentum", {**spec, "when": {draw(UNKNOWN_NAME): "sgd"}}
    return "momentum", {**spec, "when": {"optimizer": draw(JUNK)}}


def _bad_fixed(draw) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["n_hidden", "learning_rate", "dropout", "batch_size"]))
    if kind == "n_hidden":
        return kind, draw(st.one_of(st.integers(-100, -1), st.integers(101, 10**6), NAME))
    if kind == "learning_rate":
        return kind, draw(st.one_of(st.floats(-10, 0), NAME))
    if kind == "dropout":
        return kind, draw(st.one_of(st.floats(1.0, 100), st.floats(-10, -0.01)))
    return kind, draw(st.one_of(st.integers(-100, 0), NAME))


@st.composite
def malformed_space(draw) -> tuple[dict[str, Any], str]:
    """(search_space config, the param name the error must point at)."""
    maker = draw(
        st.sampled_from([_bad_bounds, _bad_names, _bad_structure, _bad_condition, _bad_fixed])
    )
    name, spec = maker(draw)
    params: dict[str, Any] = {
        "n_hidden": {"type": "int", "low": 0, "high": 8},
        "n_neurons": {"type": "int", "low": 16, "high": 256},
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    }
    params[name] = spec  # replaces the valid entry, or adds the bad one last
    return {"name": "broken", "params": params}, name


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=malformed_space())
def test_malformed_space_exits_2_with_one_line_naming_the_key(base_config, case):
    from search.cli import _guarded
    from search.settings import load_settings

    space, name = case
    cfg = copy.deepcopy(base_config)
    cfg["search_space"] = space
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        _guarded(lambda: load_settings(cfg))
    assert exit_info.value.code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1, err.getvalue()
    assert lines[0].startswith("sweep: error: search_space.params.")
    assert f"search_space.params.{name}" in lines[0], (space["params"][name], lines[0])
    assert "Traceback" not in err.getvalue()
    if "ray" in sys.modules:
        import ray

        assert not ray.is_initialized()
