"""Records that survive a tracking hiccup.

Tune calls the sweep's MLflow callback in its own loop: an error there (a SQLite store
locked by another writer past its timeout, a tracking server restarting, a network
blip) would end the whole sweep. ``Buffered`` stands in front of the recorder: each
call is queued, and the queue is written in order; a call that fails with a transient
error stays at the head of the queue and is tried again after a backoff (1 s doubling
to 30 s), while the sweep goes on. The driver flushes what is left once the trials have
ended, waiting up to a deadline. Errors that retrying cannot mend (a bad value) are
raised at once.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)
FIRST_BACKOFF_S, MAX_BACKOFF_S = 1.0, 30.0
# MLflow's error codes for a store that may answer on a later try
_TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


def transient(exc: BaseException) -> bool:
    """Whether trying the same call again later may succeed."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError  # MLflow's SQL stores: locked, gone away

    if isinstance(exc, OSError | OperationalError):  # refused, reset, timed out, locked
        return True
    return isinstance(exc, MlflowException) and exc.error_code in _TRANSIENT_CODES


class Buffered:
    """``target``'s methods, called through a queue that outlives transient errors."""

    def __init__(self, target: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self._clock = clock
        self._pending: collections.deque[tuple[str, tuple, dict]] = collections.deque()
        self._next_try = 0.0
        self._backoff = FIRST_BACKOFF_S
        self.failures = 0  # transient errors met so far
        self.last_error = ""

    def __getattr__(self, name: str) -> Callable[..., None]:
        if not callable(getattr(self.target, name)):
            return getattr(self.target, name)

        def queued(*args: Any, **kwargs: Any) -> None:
            self._pending.append((name, args, kwargs))
            self._drain()

        return queued

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self, wait_s: float, sleep: Callable[[float], None] = time.sleep) -> bool:
        """Write what is queued, retrying for up to ``wait_s`` seconds; whether it all
        went."""
        deadline = self._clock() + wait_s
        while self._pending:
            self._drain()
            if not self._pending or self._clock() >= deadline:
                break
            sleep(max(0.05, min(self._next_try, deadline) - self._clock()))
        return not self._pending

    def _drain(self) -> None:
        while self._pending and self._clock() >= self._next_try:
            name, args, kwargs = self._pending[0]
            try:
                getattr(self.target, name)(*args, **kwargs)
            except Exception as exc:
                if not transient(exc):
                    raise
                self._held(exc)
                return
            self._pending.popleft()
            self._backoff = FIRST_BACKOFF_S

    def _held(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = (
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        )
        LOG.warning(
            "tracking: %s; %d record(s) queued, next try in %.0f s",
            self.last_error,
            self.pending,
            self._backoff,
        )
        self._next_try = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
