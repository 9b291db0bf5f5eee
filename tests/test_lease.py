"""One driver per sweep (search/lease.py): a live driver's lease refuses a second one,
a dead driver's is taken over, and only the holder removes it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from dnn_sweep.errors import ConfigError
from search.lease import STALE_S, Lease, lease_path


def _hold(tmp_path, name: str, pid: int, host: str | None = None, age: float = 0.0) -> None:
    beat = {"host": host or socket.gethostname(), "pid": pid, "token": "theirs"}
    beat["beat"] = time.time() - age
    (tmp_path / f"{name}.lease.json").write_text(json.dumps(beat))


def test_a_live_driver_refuses_a_second_one_naming_it(tmp_path):
    _hold(tmp_path, "s", os.getppid())  # a live process on this host
    with pytest.raises(
        ConfigError, match=rf"^name=s: another driver runs this sweep \(pid {os.getppid()} on "
    ):
        Lease(str(tmp_path), "s").acquire(print)


def test_another_hosts_fresh_lease_is_refused_and_a_stale_one_taken_over(tmp_path):
    _hold(tmp_path, "s", 1, host="elsewhere")
    with pytest.raises(ConfigError, match="on elsewhere, last heartbeat 0 s ago"):
        Lease(str(tmp_path), "s").acquire(print)
    _hold(tmp_path, "s", 1, host="elsewhere", age=STALE_S + 1)
    said: list[str] = []
    lease = Lease(str(tmp_path), "s").acquire(said.append)
    assert said and "took over the sweep from a driver that is gone (pid 1 on elsewhere" in said[0]
    assert lease.holder().token == lease.me.token
    lease.release()
    assert not os.path.exists(lease_path(str(tmp_path), "s"))


def test_a_dead_pid_on_this_host_is_taken_over_at_once(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _hold(tmp_path, "s", gone.pid)
    lease = Lease(str(tmp_path), "s").acquire(lambda line: None)
    assert lease.holder().pid == os.getpid()
    lease.release()


def test_release_leaves_a_lease_that_is_not_its_own(tmp_path):
    lease = Lease(str(tmp_path), "s").acquire(lambda line: None)
    _hold(tmp_path, "s", os.getppid())  # taken over meanwhile
    lease.release()
    assert json.loads((tmp_path / "s.lease.json").read_text())["token"] == "theirs"


@pytest.mark.slow
def test_the_sweep_command_refuses_a_second_driver_in_one_line(tmp_path):
    """What `sweep` prints while another driver holds the sweep: exit 2, one line, in
    seconds (refused before Ray starts; nothing written: no record, no trial)."""
    from tests.helpers import run_cli

    (tmp_path / "ray_results").mkdir()
    _hold(tmp_path / "ray_results", "held", os.getppid())
    started = time.monotonic()
    proc = run_cli("sweep", tmp_path, "dataset=digits", "name=held", "trials=1", timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "another driver runs this sweep" in lines[0], proc.stderr
    assert not (tmp_path / "mlflow.db").exists(), took
