"""One driver per sweep: a lease with a heartbeat, kept under ``ray.storage_path``.

Two drivers on one sweep (a ``resume=true`` while the first still runs, or two sweeps of
one name) would share its Tune folder, its study and its parent run, and each would act
on what the other wrote. So a driver holds ``<storage_path>/<name>.lease.json`` (host,
pid, a token of its own, the time of its last heartbeat) while it runs and rewrites it
every ``BEAT_S`` seconds. A second driver reads it first: a fresh lease of another
driver is refused in one line naming it; a lease whose driver is dead (its heartbeat
older than ``STALE_S``, or, on the same host, its pid gone) is taken over, with a line
saying so. Kept beside the sweep folders so every machine that can resume the sweep
(same storage path) sees it, on a local folder or an object store.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from dnn_sweep.errors import ConfigError
from search import storage

BEAT_S = 5.0
STALE_S = 30.0  # six missed heartbeats: that driver is gone
CONFIRM_S = 0.3


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    token: str
    beat: float  # wall-clock seconds of its last heartbeat

    def alive(self, now: float) -> bool:
        if now - self.beat > STALE_S:
            return False
        if self.host != socket.gethostname():
            return True  # another machine's: only its heartbeat tells
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's live process
            pass
        return True

    def describe(self, now: float) -> str:
        return f"pid {self.pid} on {self.host}, last heartbeat {now - self.beat:.0f} s ago"


def lease_path(storage_path: str, name: str) -> str:
    return storage.join(storage_path, f"{name}.lease.json")


class Lease:
    """This driver's hold on sweep ``name``: ``acquire`` (raises when another live driver
    holds it), a heartbeat thread while held, ``release`` (only if still ours)."""

    def __init__(self, storage_path: str, name: str) -> None:
        self.path = lease_path(storage_path, name)
        self.name = name
        self.me = Holder(socket.gethostname(), os.getpid(), uuid.uuid4().hex, time.time())
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._beating, name="lease", daemon=True)

    def check(self) -> Holder | None:
        """The other driver's lease, if one is there and that driver is gone; raises
        ConfigError naming it when it is alive. Also called before Ray starts, so a
        second driver is refused in seconds (``acquire`` checks again)."""
        now = time.time()
        other = self.holder()
        if other is None or other.token == self.me.token:
            return None
        if other.alive(now):
            raise ConfigError(
                f"name={self.name}: another driver runs this sweep ({other.describe(now)}; "
                f"{self.path}); wait for it to end, or stop it"
            )
        return other

    def acquire(self, say: Callable[[str], None]) -> Lease:
        """Hold the lease, or raise ConfigError naming the driver that does."""
        other = self.check()
        if other is not None:
            say(f"  took over the sweep from a driver that is gone ({other.describe(time.time())})")
        self._write()
        time.sleep(CONFIRM_S)  # two drivers that wrote at once: the last write holds it
        held = self.holder()
        if held is None or held.token != self.me.token:
            raise ConfigError(
                f"name={self.name}: another driver started this sweep at the same moment "
                f"({held.describe(time.time()) if held else self.path}); wait for it to end"
            )
        self._beat.start()
        return self

    def holder(self) -> Holder | None:
        text = storage.read_text(self.path)
        if not text:
            return None
        try:
            return Holder(**json.loads(text))
        except (ValueError, TypeError):  # not ours to read: treat as no lease
            return None

    def release(self) -> None:
        self._stop.set()
        if self._beat.is_alive():
            self._beat.join(timeout=BEAT_S * 2)
        held = self.holder()
        if held is not None and held.token == self.me.token:
            storage.remove(self.path)

    def _write(self) -> None:
        beat = Holder(self.me.host, self.me.pid, self.me.token, time.time())
        storage.write_text(self.path, json.dumps(vars(beat)))

    def _beating(self) -> None:
        while not self._stop.wait(BEAT_S):
            held = self.holder()
            if held is not None and held.token != self.me.token:
                return  # taken over (this driver was thought dead): stop writing
            try:
                self._write()
            except OSError:  # storage hiccup: the next beat tries again
                continue
