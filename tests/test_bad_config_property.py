"""Property: over the whole config (not only search spaces), a mistyped value or a
mistyped key ends with exit status 2 and one line naming the key, before anything is
created (no MLflow file, no Ray, no folder)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FAST
from tests.helpers import check_inputs

BASE = ("dataset=digits", "search_space=keras_tuner")
# Keys whose value is free text (any string is a valid value) or a config group's name.
FREE = ("name", "ray.storage_path", "tracking.registered_model", "tensorboard.log_dir")


def _leaves() -> dict[str, object]:
    from omegaconf import OmegaConf

    from search.config import compose

    cfg = OmegaConf.to_container(compose(list(BASE)), resolve=True)
    out: dict[str, object] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = node

    walk(cfg, "")
    return {
        k: v
        for k, v in out.items()
        if not k.startswith(("search_space.", "hydra."))
        and not k.endswith(".name")
        and k not in FREE
        and v is not None
    }


LEAVES = _leaves()
TYPED = sorted(k for k, v in LEAVES.items() if isinstance(v, bool | int | float))
BAD = {bool: ["maybe", "2", "[true]"], int: ["abc", "[1,2]", "1.5e"], float: ["abc", "[0.1]"]}


def _bad_value(key: str) -> st.SearchStrategy[str]:
    value = LEAVES[key]
    kind = bool if isinstance(value, bool) else int if isinstance(value, int) else float
    return st.sampled_from(BAD[kind])


def _assert_refused(tmp_path, monkeypatch, override: str, key: str, extra: str = "") -> None:
    import tempfile
    from pathlib import Path

    import ray

    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    monkeypatch.chdir(folder)
    code, lines = check_inputs(*BASE, override)
    assert code == 2 and len(lines) == 1, (override, lines)
    assert lines[0].startswith("sweep: error: ") and key in lines[0] and extra in lines[0], (
        override,
        lines[0],
    )
    assert not list(folder.iterdir()), (override, list(folder.iterdir()))  # nothing created
    assert not ray.is_initialized()


@settings(
    max_examples=10 if FAST else 30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_mistyped_value_names_its_key(tmp_path, monkeypatch, data):
    key = data.draw(st.sampled_from(TYPED))
    value = data.draw(_bad_value(key))
    _assert_refused(tmp_path, monkeypatch, f"{key}={value}", key)


def _typos(key: str) -> st.SearchStrategy[str]:
    head, _, leaf = key.rpartition(".")
    prefix = f"{head}." if head else ""

    def mutate(args: tuple[int, str]) -> str:
        i, letter = args
        i %= len(leaf)
        options = [leaf[:i] + leaf[i + 1 :], leaf[:i] + letter + leaf[i:]]
        return prefix + options[i % 2] if len(leaf) > 3 else prefix + leaf + letter

    return st.tuples(st.integers(0, 50), st.sampled_from("aeiouxz")).map(mutate)


@settings(
    max_examples=8 if FAST else 20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_mistyped_key_is_named_with_the_nearest_one(tmp_path, monkeypatch, data):
    key = data.draw(st.sampled_from(sorted(LEAVES)))
    typo = data.draw(_typos(key))
    siblings = {k for k in LEAVES if k.rpartition(".")[0] == key.rpartition(".")[0]}
    if typo in LEAVES or typo.split(".")[-1] in {s.split(".")[-1] for s in siblings}:
        return  # not a typo after all
    _assert_refused(tmp_path, monkeypatch, f"{typo}=1", typo, "unknown config key")


def test_the_generators_cover_the_config():
    assert {"trials", "seed", "searcher.n_startup_trials", "resume", "checkpoint.frequency"} <= set(
        TYPED
    )
    assert len(TYPED) >= 20, TYPED


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("tracking.uri=ftp://host/mlflow", "tracking.uri=ftp://host/mlflow"),
        ("tracking.uri=s4://bucket", "tracking.uri=s4://bucket"),
        ("cluster.dashboard_host=somewhere", "cluster.dashboard_host"),
    ],
)
def test_unsupported_schemes_and_hosts(tmp_path, monkeypatch, override, key):
    _assert_refused(tmp_path, monkeypatch, override, key)
