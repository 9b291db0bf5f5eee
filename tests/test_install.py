"""`pip install .` (not editable) gives a `sweep` that finds its configs from any folder."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with this project installed regularly (`pip install .`)."""
    venv = tmp_path_factory.mktemp("install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    purelib = _purelib(venv)
    # Reuse this environment's dependencies (no network, no 2 GB copy): a .pth adds
    # them after the new venv's own site-packages, where the project gets installed.
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return venv


def _purelib(venv: Path) -> str:
    return subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_regular_install_ships_conf_and_console_script(installed, tmp_path):
    venv, purelib = installed, _purelib(installed)
    shipped = {
        p.relative_to(Path(purelib) / "search" / "conf").as_posix()
        for p in (Path(purelib) / "search" / "conf").rglob("*.yaml")
    }
    in_repo = {p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert shipped == in_repo
    proc = subprocess.run(
        [str(venv / "bin" / "sweep"), "--cfg", "job", "search_space=keras_tuner"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "name: keras_tuner" in proc.stdout
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import search.cli as c; print(c.conf_dir())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(purelib), where


SPACE = """name: mine
params:
  n_hidden: {type: int, low: 1, high: 2}
  n_neurons: 16
  learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
"""


def test_installed_sweep_takes_a_users_config_folder_and_multirun(installed, tmp_path):
    """From a scratch folder, after `pip install`: a space of one's own under ./myconf
    (-cd) runs a sweep; a multirun's failed job makes the command exit non-zero without
    stopping the jobs after it. (A multirun of two sweeps, -cd, is docs/search-spaces.md's
    first command, which the docs test runs from the editable install.)"""
    from mlflow.tracking import MlflowClient

    from tests.helpers import trial_runs

    work = tmp_path / "scratch"
    (work / "myconf" / "search_space").mkdir(parents=True)
    (work / "myconf" / "search_space" / "mine.yaml").write_text(SPACE)
    common = [
        "dataset=digits",
        "trials=1",
        "max_epochs=1",
        "max_concurrent=2",
        "tracking.uri=sqlite:///runs.db",
    ]

    def sweep(*args):
        return subprocess.run(
            [str(installed / "bin" / "sweep"), *args],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=600,
        )

    mine = sweep("-cd", "./myconf", "search_space=mine", "seed=1", "name=grid", *common)
    assert mine.returncode == 0, mine.stdout[-2000:] + mine.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{work / 'runs.db'}")
    (parent,), children = trial_runs(client, "grid")
    assert len(children) == 1 and parent.info.status == "FINISHED"
    assert (parent.data.params["search_space"], parent.data.params["seed"]) == ("mine", "1")
    failing = sweep(
        "-m",
        "dataset=digits",
        "search_space=keras_tuner",
        "trials=0,-1",
        "max_epochs=1",
        "max_concurrent=2",
        "name=partly",
        "tracking.uri=sqlite:///runs.db",
    )
    assert failing.returncode == 1, failing.stdout[-2000:] + failing.stderr[-2000:]
    assert "trials=0: must be an integer > 0" in failing.stderr
    assert "trials=-1: must be an integer > 0" in failing.stderr  # the next job still ran
    assert "2 multirun job(s) failed" in failing.stderr
