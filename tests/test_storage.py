"""search/storage.py and the resume state on it: URIs keep their scheme, bucket and
query; names with glob characters are matched exactly; the state file is replaced
whole (and no temporary file is left when it cannot be)."""

from __future__ import annotations

import json

import pytest

from dnn_sweep.errors import ConfigError
from search import storage
from search.sweep_state import STATE_FILE, cluster_of, find_state, write_state


@pytest.mark.parametrize(
    ("base", "parts", "joined"),
    [
        ("s3://b/p", ("x",), "s3://b/p/x"),
        ("s3://b", ("x", "y"), "s3://b/x/y"),
        (
            "s3://b/p?endpoint_override=127.0.0.1:9000&scheme=http",
            ("exp[1]-20261207-101010",),
            "s3://b/p/exp%5B1%5D-20261207-101010?endpoint_override=127.0.0.1:9000&scheme=http",
        ),
        ("gs://b/p/", ("it s",), "gs://b/p/it%20s"),
        ("/tmp/r", ("a", "b"), "/tmp/r/a/b"),
    ],
)
def test_join_keeps_a_uri_whole(base, parts, joined):
    assert storage.join(base, *parts) == joined


def test_resume_finds_the_exact_name_newest_first(tmp_path):
    root = str(tmp_path)
    for run, n in [("exp[1]-20261207-101010", 1), ("exp[1]-20261207-101011", 2)]:
        write_state(storage.join(root, run), {"config": {"n": n}})
    write_state(storage.join(root, "exp1-20261207-101012"), {"config": {"n": 3}})
    (tmp_path / "exp[1]-20261207-101013").mkdir()  # a folder without state: not a sweep
    folder, state = find_state(root, "exp[1]")
    assert folder.endswith("exp[1]-20261207-101011") and state["config"] == {"n": 2}
    assert find_state(root, "exp1")[1]["config"] == {"n": 3}
    with pytest.raises(ConfigError, match="resume=true name=exp: no sweep of that name"):
        find_state(root, "exp")


def test_the_state_file_is_replaced_whole(tmp_path, monkeypatch):
    folder = str(tmp_path / "s-20261207-101010")
    write_state(folder, {"config": {"n": 1}})

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_state(folder, {"config": {"n": 2}})
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "s-20261207-101010").iterdir()) == [STATE_FILE]
    assert json.loads((tmp_path / "s-20261207-101010" / STATE_FILE).read_text())["config"] == {
        "n": 1
    }


def test_a_missing_storage_path_has_no_folders(tmp_path):
    assert storage.folders(str(tmp_path / "none")) == []
    assert storage.read_text(str(tmp_path / "none" / "x.json")) is None


@pytest.fixture
def s3(tmp_path, monkeypatch):
    from tests.s3_server import s3_server

    with s3_server(tmp_path / "s3") as server:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        yield server


def test_resume_state_on_a_real_s3_server(s3):
    """The same lookup on SeaweedFS's S3 gateway: a URI with an endpoint and a name
    holding glob and space characters."""
    root = s3.uri("sweeps")
    assert storage.folders(root) == []
    write_state(storage.join(root, "my exp[1]-20261207-101010"), {"config": {"n": 1}})
    write_state(storage.join(root, "my exp[1]-20261207-101011"), {"config": {"n": 2}})
    folder, state = find_state(root, "my exp[1]")
    assert state["config"] == {"n": 2}
    assert folder == storage.join(root, "my exp[1]-20261207-101011")
    assert storage.read_text(storage.join(folder, STATE_FILE)) is not None
    assert storage.folders(root) == ["my exp[1]-20261207-101010", "my exp[1]-20261207-101011"]


PG = "postgresql://sweep:pw1234@db:5432/optuna"


def test_the_state_file_holds_no_credentials_and_resume_takes_them_again(tmp_path):
    from search.sweep_state import with_secrets

    config = {"name": "s", "study": {"storage": PG}, "tracking": {"uri": "https://tok3n@h"}}
    folder = str(tmp_path / "s-20261207-101010")
    write_state(folder, {"config": config, "study": {"name": "s-1", "storage": PG}})
    text = (tmp_path / "s-20261207-101010" / STATE_FILE).read_text()
    assert "pw1234" not in text and "tok3n" not in text
    stored = find_state(str(tmp_path), "s")[1]["config"]
    assert with_secrets(stored, config, "s") == config
    other = {**config, "study": {"storage": "sqlite:////tmp/optuna.db"}}
    with pytest.raises(
        ConfigError, match=r"^study.storage=postgresql://sweep:\*\*\*@db:5432/optuna: "
    ):
        with_secrets(stored, other, "s")
    wrong = {**config, "study": {"storage": PG.replace("db:5432", "other:5432")}}
    with pytest.raises(ConfigError, match="give it again with them"):
        with_secrets(stored, wrong, "s")


def test_a_resume_joins_the_cluster_its_sweep_ran_on(tmp_path):
    """Known before Ray is imported (loopback and token auth are read then, once): a
    resume's cluster is its stored sweep's, whatever this command says."""
    remote = {"cluster": {"name": "remote", "address": "10.0.0.5:6379"}}
    write_state(str(tmp_path / "far-20261207-101010"), {"config": remote})
    write_state(str(tmp_path / "near-20261207-101010"), {"config": {"cluster": {"name": "local"}}})
    assert cluster_of(True, str(tmp_path), "far", None) == "10.0.0.5:6379"
    assert cluster_of(True, str(tmp_path), "near", None) is None
    assert cluster_of(False, str(tmp_path), "far", None) is None  # a new sweep: its own
    assert cluster_of(True, str(tmp_path), "nosuch", "h:1") == "h:1"  # prepare refuses it
