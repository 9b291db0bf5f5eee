"""A quiet terminal: what TensorFlow, CUDA, absl and Ray print for themselves goes to a log
file in the sweep's folder; the terminal keeps the sweep's own lines.

Where: ``<ray.storage_path>/<run>/sweep.log``, the folder of the sweep's Tune run (beside
``dnn_sweep.json`` and Tune's own state; a resumed sweep appends to the log of the folder
it continues); with a URI storage path (``s3://...``) ``./logs/<run>/sweep.log`` (the log
is written as it goes, on this machine). ``sweep-lr-find``: ``lr_find.log`` in
``<ray.storage_path>/lr-find-<its MLflow run id>/``. The path is printed once
(``  logs: ...``).

What goes there, while a sweep runs (:func:`quietly`):

- file descriptor 2 of this process: TensorFlow's C++ logging, which no setting silences
  (measured with TF 2.21: even at ``TF_CPP_MIN_LOG_LEVEL=3`` its first import prints
  absl's ``WARNING: All log messages before absl::InitializeLog() ...`` and
  ``cudart_stub.cc ... Could not find cuda drivers``, twice; at 2, the driver's default
  here, also ``E0000 ... failed call to cuInit``), Ray's C++ core, and whatever Python
  writes to stderr meanwhile where ``sys.stderr`` is fd 2 (a terminal, a pipe):
  libraries' warnings and logs. The sweep's own lines go to stdout; an error that ends
  the sweep is printed after stderr is given back.
- Ray's Python loggers (Tune's trial tracebacks, ``... may be a performance
  bottleneck``), whatever ``sys.stderr`` is (a notebook's too).
- Not the trials' workers: Ray does not forward their output (``log_to_driver=False``,
  search/ray_runtime.py); it stays in Ray's session logs, whose folder the log names.

Until the run's folder is known (and exists: a sweep refused before its first record
leaves no folder) the messages wait in a temporary file; a sweep that ends before that
gives them back to stderr. The terminal still shows a line per failed trial (the driver's
own, search/progress.py). Nothing here is permanent: stderr and Ray's handlers are given
back when the sweep ends (the Python API's caller keeps its own); the levels and
variables of :func:`quiet_libraries` stay set for the process. A variable the user set
(``TF_CPP_MIN_LOG_LEVEL=0``) is kept: its lines go to the log.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
LOG_NAME = "sweep.log"
# What TensorFlow's C++ start-up prints on any machine (absl's preamble, CUDA probes,
# CPU-instruction notes): not given back to a refused sweep's terminal, whose one line
# is the news (the rest of what waited, a Python warning say, is).
STARTUP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog"
    r"|[IWEF]\d{4} [\d:.]+\s+\d+ \S+\.(cc|h):\d+\]"
    r"|(To enable the following instructions|This TensorFlow binary is optimized)"
)
# Ray's own format (ray_constants.LOGGER_FORMAT; ray.init sets it on the handlers anyway)
RAY_FORMAT = "%(asctime)s\t%(levelname)s %(filename)s:%(lineno)s -- %(message)s"
# Library loggers' levels for the whole process (the CLI's and the Python API's sweeps)
LEVELS = {
    "alembic": logging.WARNING,
    "mlflow": logging.WARNING,
    "ray": logging.WARNING,
    "ray.tune": logging.WARNING,
    "optuna": logging.WARNING,
    # Keras warns when the final phase predicts with several models ("retracing")
    "tensorflow": logging.ERROR,
    # Ray Data logs each streaming read it runs (and that its progress bars are off)
    "ray.data": logging.ERROR,
    # warns for every trial stopped before its first epoch (no result file): the sweep
    # reports those trials itself (MLflow, and the one-line error when none has a result)
    "ray.tune.analysis.experiment_analysis": logging.ERROR,
}


def quiet_libraries() -> None:
    """Levels and switches of the libraries' own output (defaults: a variable the user
    set is kept). Ray's workers started after this inherit the variables."""
    # TensorFlow's C++ INFO and WARNING lines (oneDNN, "This TensorFlow binary is
    # optimized ...") would fill the log; its errors (cuInit) still go there
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # MLflow prints two "View run ... at URL" lines per run it closes (URL = the tracking
    # URI, credentials included); the sweep prints its own summary with the UI link.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name, level in LEVELS.items():
        logging.getLogger(name).setLevel(level)


def run_log(storage_path: str, run: str, name: str = LOG_NAME) -> Path:
    """The log of run ``run`` (a folder name, or the absolute folder a resume continues)
    under ``ray.storage_path``; ``./logs`` stands in for a URI storage path."""
    base = Path("logs") if "://" in storage_path else Path(storage_path)
    return (base / run / name).resolve()


@dataclass
class _Redirect:
    """Where file descriptor 2 writes while a sweep runs, and what to give back."""

    terminal: int  # a duplicate of the caller's fd 2
    target: IO[bytes]  # the temporary file, then the log
    path: Path | None = None  # the log; None while it is the temporary file
    notes: list[str] = field(default_factory=list)  # for the log's head, once it exists


_ACTIVE: list[_Redirect] = []


class _Fd2:
    """A text stream onto file descriptor 2, whatever ``sys.stderr`` is."""

    def write(self, text: str) -> int:
        os.write(2, text.encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        pass


def quietly(run: Callable[P, R]) -> Callable[P, R]:
    """``run`` (a sweep) with the libraries' own output kept out of the terminal."""

    @functools.wraps(run)
    def quiet(*args: P.args, **kwargs: P.kwargs) -> R:
        with quiet_terminal():
            return run(*args, **kwargs)

    return quiet


@contextlib.contextmanager
def quiet_terminal() -> Iterator[None]:
    """File descriptor 2 and Ray's loggers into a temporary file until :func:`log_to`
    names the log; all given back on exit. Inside another (a ``transfer.pretrain``
    sweep inside its sweep), the outer one's."""
    quiet_libraries()
    if _ACTIVE:
        yield
        return
    try:
        terminal = os.dup(2)
    except OSError:  # no file descriptor 2 (an embedded interpreter): nothing to keep out
        terminal = None
    if terminal is None:
        yield
        return
    # named, in the temp folder: what a hard crash (a segfault in TensorFlow's import)
    # printed before the log's place was known is still there; removed when done with
    waiting = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by _close
        prefix="dnn-sweep-", suffix=".log", delete=False
    )
    redirect = _Redirect(terminal, waiting)
    _point_fd2(redirect.target.fileno())
    _ACTIVE.append(redirect)
    swapped = _ray_handlers_to_fd2()
    try:
        yield
    finally:
        _ACTIVE.remove(redirect)
        _restore_handlers(swapped)
        _give_back(redirect)


def log_to(path: Path) -> str | None:
    """From now on the messages go to ``path`` (appended; what waited goes first).
    Returns the line that tells the user, or None outside :func:`quiet_terminal`."""
    if not _ACTIVE:
        return None
    redirect = _ACTIVE[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "ab")  # noqa: SIM115 - closed when replaced or given back
    head = [f"== {time.strftime('%Y-%m-%d %H:%M:%S')} {path.parent.name}", *redirect.notes]
    log.write("".join(f"{line}\n" for line in head).encode())
    if redirect.path is None:  # what waited in the temporary file
        redirect.target.seek(0)
        shutil.copyfileobj(redirect.target, log)
    log.flush()
    _point_fd2(log.fileno())  # O_APPEND: C++ writes and ours never overwrite each other
    _close(redirect)
    redirect.target, redirect.path, redirect.notes = log, path, []
    return f"  logs: {path} (TensorFlow's and Ray's own messages)"


def note(line: str) -> None:
    """A line for the head of the log (e.g. where Ray keeps the workers' logs), written
    only once the log exists: a sweep refused before then leaves its one line alone."""
    if _ACTIVE:
        _ACTIVE[-1].notes.append(line)


def _point_fd2(fd: int) -> None:
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()  # what Python wrote before goes where it was meant to
    os.dup2(fd, 2)


def _give_back(redirect: _Redirect) -> None:
    """The caller's fd 2 back; what still waited in the temporary file goes to it."""
    _point_fd2(redirect.terminal)
    os.close(redirect.terminal)
    if redirect.path is None:
        redirect.target.seek(0)
        waited = b"".join(
            line
            for line in redirect.target
            if not STARTUP_NOISE.match(line.decode("utf-8", "replace"))
        )
        if waited:
            os.write(2, waited)
    _close(redirect)


def _close(redirect: _Redirect) -> None:
    """Close what fd 2 wrote to (the temporary file: removed too)."""
    redirect.target.close()
    if redirect.path is None:
        os.unlink(redirect.target.name)


def _ray_handlers_to_fd2() -> list[tuple[logging.Logger, logging.Handler, logging.Handler]]:
    """Ray's terminal handlers (on ``ray`` and the ``ray.*`` loggers that keep their own,
    e.g. ``ray.data``) swapped for one onto fd 2; Ray's file handlers (its session logs)
    stay. Returns (logger, Ray's handler, ours) to swap back. Without Ray imported (the
    lr finder), none: Ray's handlers write to sys.stderr, fd 2 in a terminal."""
    from tracking.secrets import MaskingFilter

    swapped: list[tuple[logging.Logger, logging.Handler, logging.Handler]] = []
    if "ray" not in sys.modules:
        return swapped
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or not (name + ".").startswith("ray."):
            continue
        for handler in list(logger.handlers):
            # a StreamHandler writes to a terminal; a FileHandler (a StreamHandler too)
            # or Ray Data's SessionFileHandler (a plain Handler) to Ray's session logs
            if not isinstance(handler, logging.StreamHandler) or isinstance(
                handler, logging.FileHandler
            ):
                continue
            ours = logging.StreamHandler(_Fd2())
            ours.setLevel(handler.level)
            ours.setFormatter(logging.Formatter(RAY_FORMAT))
            ours.addFilter(MaskingFilter())
            logger.removeHandler(handler)
            logger.addHandler(ours)
            swapped.append((logger, handler, ours))
    return swapped


def _restore_handlers(
    swapped: list[tuple[logging.Logger, logging.Handler, logging.Handler]],
) -> None:
    for logger, theirs, ours in swapped:
        logger.removeHandler(ours)
        logger.addHandler(theirs)
