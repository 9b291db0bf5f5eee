"""Ray Tune's ``OptunaSearch``, made safe for a stored (RDB) study.

Tune snapshots its searcher every few seconds; the stored study is written at once. After
a killed driver the study can be ahead of the snapshot: a trial Optuna recorded as
finished (told just before the kill) is restored by Tune as running, goes on reporting,
and Optuna refuses to update a finished trial, which would end the resumed sweep (found
by tests/test_chaos.py).
"""

from __future__ import annotations

import contextlib

import optuna
from ray.tune.search.optuna import OptunaSearch


class StoredStudySearch(OptunaSearch):
    """``OptunaSearch`` that drops a report for a trial its study has finished already
    (its value is in the study; nothing is lost)."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            super().on_trial_result(trial_id, result)
