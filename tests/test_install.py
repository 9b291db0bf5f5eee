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
    """From a scratch folder, after `pip install`: -m over two spaces, one of them one's
    own under ./myconf (-cd), gives 2 sweeps (2 parent runs); a failed job makes the
    command exit non-zero without stopping the jobs after it."""
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

    many = sweep(
        "-m",
        "-cd",
        "./myconf",
        "search_space=mine,keras_tuner",
        "seed=1",
        "name=grid",
        *common,
    )
    assert many.returncode == 0, many.stdout[-2000:] + many.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{work / 'runs.db'}")
    parents, children = trial_runs(client, "grid")
    assert len(parents) == 2 and len(children) == 2
    spaces = sorted((p.data.params["search_space"], p.data.params["seed"]) for p in parents)
    assert spaces == [("keras_tuner", "1"), ("mine", "1")]
    assert all(p.info.status == "FINISHED" for p in parents)
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
