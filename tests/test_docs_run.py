"""Every shell and Python block of README.md and docs/*.md runs as written, in order, in
one fresh folder laid out like a clone (its Makefile, scripts and .venv), with the venv
on PATH as the README asks; documented outputs are checked for shape
(tests/docs_blocks.py says how blocks are marked and what "shape" means).

Before the README, the folder gets what `make sweep` leaves: a Fashion-MNIST sweep under
the default name (here 1 trial of 1 epoch on 100 images per class, not 10 minutes), so
the README's commands meet the store a new user's do."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.docs_blocks import DOC_FOLDER, Step, steps, transcript, unmatched

pytestmark = pytest.mark.slow

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
STEP_TIMEOUT = 900
# Set to 1 to write what the runs printed into the pages' output blocks and transcripts
# (then read the diff: numbers move, shapes should not).
REWRITE = os.environ.get("DNN_SWEEP_DOCS_REWRITE") == "1"
PROGRESS = re.compile(r"^\[\d+:\d\d[,\]]")
# What `make sweep` leaves behind, at a fraction of its cost (same data, same name).
FIRST_SWEEP = "sweep trials=1 max_epochs=1 time_budget_s=null dataset.max_per_class=100"


class World:
    """The folder the docs run in, its environment, and what the last step printed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        venv = Path(sys.executable).parents[1]
        stamp = venv / ".dnn-sweep-installed"  # the Makefile's: `make` would set up again
        newest = max((ROOT / f).stat().st_mtime for f in ("pyproject.toml", "scripts/setup.sh"))
        assert stamp.exists() and stamp.stat().st_mtime >= newest, "run `make setup` first"
        for name, target in {
            ".venv": venv,
            "Makefile": ROOT / "Makefile",
            "pyproject.toml": ROOT / "pyproject.toml",
            "scripts": ROOT / "scripts",
        }.items():
            (folder / name).symlink_to(target)
        home = folder.parent / f"{folder.name}-home"
        home.mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
            "PATH": f"{folder / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(home),
        }
        self.printed: list[str] = []
        self.rewrites: list[tuple[str, str]] = []

    def run(self, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            args,
            cwd=self.folder,
            env=self.env,
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=STEP_TIMEOUT,
        )
        real = str(self.folder.resolve())
        self.printed = proc.stdout.replace(real, DOC_FOLDER).splitlines()
        dump = os.environ.get("DNN_SWEEP_DOCS_DUMP")  # a folder: keep what each step printed
        if dump:
            Path(dump).mkdir(parents=True, exist_ok=True)
            with open(Path(dump) / "printed.txt", "a") as out:
                out.write(f"\n===== {args[-1][:300]}\n" + "\n".join(self.printed) + "\n")
        return proc


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    folder = tmp_path_factory.mktemp("clone")
    w = World(folder)
    proc = w.run(["bash", "-c", FIRST_SWEEP])
    assert proc.returncode == 0, proc.stdout[-3000:]
    return w


def _tail(w: World) -> str:
    return "\n".join(w.printed[-40:])


def _do(step: Step, w: World) -> None:
    if step.kind == "skip":
        assert step.argument, f"{step.where}: a skipped block says why"
    elif step.kind == "file":
        path = w.folder / step.argument
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(step.text)
    elif step.kind == "run":
        args = ["bash", "-e", "-o", "pipefail", "-c", step.text]
        if step.language == "python":
            args = ["python", "-"]
        proc = w.run(args, stdin=step.text if step.language == "python" else None)
        assert proc.returncode == 0, f"{step.where} exited {proc.returncode}:\n{_tail(w)}"
    elif step.kind == "output":
        if REWRITE:
            w.rewrites.append((step.text, "\n".join(condensed(w.printed)) + "\n"))
            return
        missing = unmatched(step.text.splitlines(), w.printed)
        assert missing is None, f"{step.where}: not printed: {missing!r}\n{_tail(w)}"
    elif step.kind == "transcript":
        _transcript(step, w)
    elif step.kind == "serves":
        _serves(step, w)


def _transcript(step: Step, w: World) -> None:
    written = []
    for command, expected in transcript(step.text):
        proc = w.run(["bash", "-c", command])
        written += [f"$ {command}", *w.printed]
        if REWRITE:
            continue
        failing = any("error" in line for line in expected)
        assert (proc.returncode != 0) == failing, f"{step.where} `{command}`:\n{_tail(w)}"
        missing = unmatched(expected, w.printed)
        assert missing is None, f"{step.where} `{command}`: not printed: {missing!r}\n{_tail(w)}"
    if REWRITE:
        w.rewrites.append((step.text, "\n".join(written) + "\n"))


def condensed(printed: list[str]) -> list[str]:
    """What a docs page shows of a run: every line but the progress lines before the
    last (a terminal redraws them)."""
    progress = [i for i, line in enumerate(printed) if PROGRESS.match(line)]
    return [line for i, line in enumerate(printed) if i not in progress[:-1]]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
            return reply.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def _serves(step: Step, w: World) -> None:
    port = int(step.argument)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is taken already"
    log = w.folder / f"server-{port}.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            ["bash", "-c", step.text],
            cwd=w.folder,
            env=w.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not _answers(port):
            assert server.poll() is None, f"{step.where} exited:\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"{step.where}: nothing answers on {port}"
            time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_block_runs_as_written(page, world):
    world.rewrites = []
    for step in steps(page):
        started = time.monotonic()
        _do(step, world)
        print(f"{step.where} {step.kind}: {time.monotonic() - started:.0f} s")
    text = page.read_text()
    for old, new in world.rewrites:  # DNN_SWEEP_DOCS_REWRITE=1: the outputs made anew
        text = text.replace(old, new, 1)
    if world.rewrites:
        page.write_text(text)
