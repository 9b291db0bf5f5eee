"""The private part of Ray Tune that dnn-sweep relies on, with why.

Reached only through the function here; ``tests/test_private_apis.py`` lists it and
fails by name when an upgrade breaks it.

- ``ray.tune.execution.tune_controller.TuneController._schedule_trial_task`` and its
  ``_resetting_trials``: with ``reuse_actors=True`` (every sweep: a fresh worker costs a
  TensorFlow import per trial), a worker that dies while it is being handed the next
  trial (Tune's ``reset`` task) is counted as two failures. Tune's actor-failure handler
  retries the trial (failure 1, the trial back to PENDING), then the reset task's own
  error handler sees that PENDING trial and records it ERROR at once (failure 2, no
  retry, whatever ``max_failures`` says), and the trial is never run again: one killed
  worker loses a trial (seen in CI's chaos test, 2026-12-01; reproduced in Ray 2.60 by
  killing a cached actor between two trials). :func:`mend_reset_failures` makes the reset
  task's error handler leave a dead actor to the actor-failure handler.
"""

from __future__ import annotations

from typing import Any

_MENDED = "_dnn_sweep_reset_mended"


def mend_reset_failures() -> None:
    """Count a worker that dies during Tune's ``reset`` as one failure, retried like
    any other (idempotent; the driver calls it before every fit)."""
    from ray.exceptions import RayActorError
    from ray.tune.execution.tune_controller import TuneController

    if getattr(TuneController, _MENDED, False):
        return
    schedule = TuneController._schedule_trial_task

    def _schedule_trial_task(self: Any, trial: Any, method_name: str, *args: Any, **kw: Any):
        on_error = kw.get("on_error")
        if method_name == "reset" and on_error is not None:

            def on_reset_error(failed: Any, exception: Exception) -> None:
                self._resetting_trials.discard(failed)
                if isinstance(exception, RayActorError):
                    return  # the actor-failure handler has counted and requeued it
                on_error(failed, exception)

            kw["on_error"] = on_reset_error
        return schedule(self, trial, method_name, *args, **kw)

    TuneController._schedule_trial_task = _schedule_trial_task
    setattr(TuneController, _MENDED, True)
