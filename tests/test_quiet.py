"""A quiet terminal (issue 26): a sweep's stdout and stderr carry the sweep's own lines
only; TensorFlow's, absl's, CUDA's and Ray's own messages go to the log whose path it
prints once; a failed trial is still one line, said by the driver; the caller's stderr
and Ray's handlers are given back (the Python API's caller keeps its own)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# What is not the sweep's: TensorFlow's C++ logging (absl prefix "I1207 ..." or "I0000
# ..."), absl's own warning, the CUDA probe, TensorFlow's CPU notes, Ray's logger lines
# ("2026-12-07 15:37:09,247\tERROR tune_controller.py:1336 -- ...") and tracebacks, and
# worker output Ray forwards ("(run_trial pid=123) ...").
NOISE = re.compile(
    r"^[IWEF]\d{4} |absl::InitializeLog|(?i:cuda)|oneDNN|This TensorFlow binary"
    r"|performance bottleneck|^\(\w*\s*pid=|\t(?:DEBUG|INFO|WARNING|ERROR) \S+\.py:\d+ --"
    r"|Traceback"
)
# Two trials (random, seed 0) draw one learning rate each: the one that diverges (its
# loss NaN at epoch 1: a real failure, trainables/train.py) and one that trains.
POISON = """\
name: poison
params:
  n_hidden: 1
  n_neurons: 16
  optimizer: sgd
  learning_rate: {type: categorical, choices: [0.01, 1.0e+20]}
"""


def test_fd2_goes_to_the_log_then_back_to_the_caller(tmp_path, capfd):
    """What C++ writes to fd 2 before the log's place is known goes first in the log;
    after the sweep, fd 2 is the caller's again; stdout is never touched."""
    from search.quiet import log_to, quiet_terminal

    path = tmp_path / "run" / "sweep.log"
    with quiet_terminal():
        os.write(2, b"I0000 before the folder\n")
        said = log_to(path)
        os.write(2, b"E0000 after\n")
        print("the sweep's own line", flush=True)
    os.write(2, b"the caller's again\n")
    out, err = capfd.readouterr()
    assert err == "the caller's again\n" and out == "the sweep's own line\n"
    assert said == f"  logs: {path} (TensorFlow's and Ray's own messages)"
    log = path.read_text()
    assert log.index("I0000 before the folder") < log.index("E0000 after"), log


def test_a_sweep_ended_before_its_folder_gives_back_what_waited(tmp_path, capfd):
    """A refusal leaves no folder: what the libraries printed goes to stderr as before."""
    from search.quiet import quiet_terminal

    with quiet_terminal():
        os.write(2, b"W0000 a library's line\n")
    assert capfd.readouterr().err == "W0000 a library's line\n"
    assert list(tmp_path.iterdir()) == []


def test_rays_loggers_go_to_the_log_and_get_their_handlers_back(tmp_path, capfd):
    import logging

    import ray  # noqa: F401 - installs Ray's own handlers

    from search.quiet import log_to, quiet_terminal

    ray_logger = logging.getLogger("ray")
    theirs = list(ray_logger.handlers)
    path = tmp_path / "sweep.log"
    with quiet_terminal():
        log_to(path)
        message = (
            "The `on_trial_result` operation took 0.516 s, which may be a performance bottleneck."
        )
        logging.getLogger("ray.tune.utils.util").warning(message)
    assert ray_logger.handlers == theirs
    assert capfd.readouterr().err == ""
    assert "WARNING" in path.read_text() and "performance bottleneck" in path.read_text()


@pytest.mark.slow
def test_the_terminal_holds_the_sweeps_own_lines(tmp_path):
    (tmp_path / "conf" / "search_space").mkdir(parents=True)
    (tmp_path / "conf" / "search_space" / "poison.yaml").write_text(POISON)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    sweep = str(Path(sys.executable).parent / "sweep")
    args = ["-cd", "conf", "search_space=poison", "dataset=digits", "trials=2", "max_epochs=1"]
    args += ["searcher=random", "scheduler=fifo", "seed=0", "fault.max_failures=0"]
    args += ["time_budget_s=null", "name=quiet", "tracking.uri=sqlite:///q.db"]
    proc = subprocess.run(
        [sweep, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    out = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stderr == "", proc.stderr[-3000:]
    assert [ln for ln in out if NOISE.search(ln)] == [], proc.stdout
    for start in ("Sweep 'quiet': ", "Sweep 'quiet' done in ", "Best trial-", "MLflow: "):
        assert sum(ln.startswith(start) for ln in out) == 1, (start, proc.stdout)
    assert "(1 completed, 0 pruned, 1 failed)" in proc.stdout, proc.stdout
    failed = [ln for ln in out if re.fullmatch(r"  trial-\w{8} failed: .*", ln)]
    assert len(failed) == 1 and ": DivergedError: loss diverged at epoch 1" in failed[0], failed
    _check_log(tmp_path, out)


def _check_log(tmp_path: Path, out: list[str]) -> None:
    """The log's path is printed once; the log, in the sweep's Tune folder, holds what
    the terminal does not: TensorFlow's lines (on a machine without CUDA they are
    certain), Ray's traceback of the failed trial, where Ray's session logs are."""
    said = [ln for ln in out if ln.startswith("  logs: ")]
    assert len(said) == 1, out
    path = Path(said[0].split()[1])
    (folder,) = (tmp_path / "ray_results").glob("quiet-*")
    assert path == folder / "sweep.log" and path.is_file(), (said, folder)
    log = path.read_text()
    assert "Trial task failed for trial" in log and "DivergedError" in log, log[-3000:]
    assert "Ray's session logs" in log, log[:2000]
    if shutil.which("nvidia-smi") is None:
        assert re.search(r"^[IWEF]\d{4} .*cuda", log, re.M | re.I), log[:3000]
