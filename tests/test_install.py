"""`pip install .` (not editable) gives a `sweep` that finds its configs from any folder."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_regular_install_ships_conf_and_console_script(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    purelib = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
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
