"""The driver's own TensorFlow import, made while the trials run.

The final phase loads Keras models, so the driver imports TensorFlow once per sweep:
5-8 s of one core, measured as the largest fixed cost of a small sweep, all of it after
the last trial ended. While Tune's loop runs, the driver's main thread mostly waits
(``ray.wait``, the GIL released), so the import is made then, in a daemon thread; the
final phase's own ``import`` finds it done. It starts as Tune's fit does (the driver's
own modules imported by then: the two threads do not import the same modules at once);
a failure here is left for the final phase's own import to report.

Measured on a 4-trial digits sweep (2 cores): 2-3 s of 42 s saved; the trials' own
imports share the cores, so less than the import's whole time.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time

MODULE = "trainables.train"  # Keras, TensorFlow and the checkpoint loader


class Preload:
    """A background ``import MODULE``, and the CPU seconds it took."""

    def __init__(self, module: str = MODULE) -> None:
        self._cpu_s = 0.0
        self._module = module
        self._thread = threading.Thread(target=self._load, name="preload", daemon=True)

    def start(self) -> Preload:
        self._thread.start()
        return self

    def join(self) -> float:
        """Wait for the import; returns its CPU seconds (the caller leaves them out of
        what it reports as Tune's loop's cost)."""
        self._thread.join()
        return self._cpu_s

    def _load(self) -> None:
        started = time.thread_time()
        with contextlib.suppress(Exception):  # the final phase imports it again, says why
            importlib.import_module(self._module)
        self._cpu_s = time.thread_time() - started
