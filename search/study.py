"""The sweep's Optuna study, stored (RDB) so it outlives the driver.

One study per sweep, named like the sweep's Ray Tune folder (``NAME-YYYYmmdd-HHMMSS``),
in ``study.storage`` (default ``optuna.db`` beside the tracking store). Ray Tune's
``OptunaSearch`` loads it by name; ``optuna-dashboard`` opens it; a resumed sweep that
adds trials asks the same study; ``warm_start`` copies an earlier sweep's finished
trials into a new study, each checked against the new space first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnn_sweep.errors import ConfigError

# What a study records about its sweep, for a later warm start to check against.
OBJECTIVE_ATTR = "dnn_sweep.objective"
SPACE_ATTR = "dnn_sweep.search_space"


@dataclass(frozen=True)
class StudyRef:
    """Where a sweep's study lives: its name and RDB storage URL."""

    name: str
    storage: str

    def open_storage(self) -> Any:
        import optuna

        return optuna.storages.RDBStorage(self.storage)


def newest_study(storage: str, sweep: str) -> str | None:
    """The name of the newest study of sweep ``sweep`` in ``storage``, or None."""
    import optuna

    prefix = "sqlite:///"
    if storage.startswith(prefix) and not Path(storage[len(prefix) :]).exists():
        return None  # reading would create the file
    pattern = re.compile(re.escape(sweep) + r"-\d{8}-\d{6}")
    names = [
        s.study_name
        for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)
        if pattern.fullmatch(s.study_name)
    ]
    return max(names) if names else None


class _Replay:
    """Stands in for an Optuna trial while the space's define-by-run function runs over
    an earlier trial's params: gives those values back and notes each distribution,
    whether the value lies in it, and which params the earlier trial lacks."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.distributions: dict[str, Any] = {}
        self.outside: list[str] = []

    def _give(self, name: str, distribution: Any, fallback: Any) -> Any:
        self.distributions[name] = distribution
        if name not in self.params:
            return fallback
        value = self.params[name]
        if not _inside(distribution, value):
            self.outside.append(f"{name}={value!r} (allowed: {_allowed(distribution)})")
        return value

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False):
        from optuna.distributions import IntDistribution

        return self._give(name, IntDistribution(low, high, log=log, step=step), low)

    def suggest_float(self, name: str, low: float, high: float, *, step=None, log=False):
        from optuna.distributions import FloatDistribution

        return self._give(name, FloatDistribution(low, high, log=log, step=step), low)

    def suggest_categorical(self, name: str, choices: Any):
        from optuna.distributions import CategoricalDistribution

        return self._give(name, CategoricalDistribution(choices), choices[0])


def _inside(distribution: Any, value: Any) -> bool:
    if hasattr(distribution, "choices"):
        return value in distribution.choices
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and distribution.low <= value <= distribution.high


def _allowed(distribution: Any) -> str:
    if hasattr(distribution, "choices"):
        return ", ".join(map(str, distribution.choices))
    return f"{distribution.low}..{distribution.high}"


def signature(objectives: list[tuple[str, str]]) -> str:
    """How a study records what it optimizes: ``val_accuracy:max,n_params:min``."""
    return ",".join(f"{m}:{mode}" for m, mode in objectives)


def warm_trials(source: StudyRef, space: Any, objectives: list[tuple[str, str]]) -> list[Any]:
    """The earlier study's finished trials, as trials of the current space.

    Raises:
        ConfigError: the earlier sweep optimized another objective, or one of its
            params lies outside the current space (named, with what is allowed).
    """
    import optuna

    study = optuna.load_study(study_name=source.name, storage=source.open_storage())
    key = f"warm_start={source.name.rsplit('-', 2)[0]}"
    theirs, ours = study.user_attrs.get(OBJECTIVE_ATTR), signature(objectives)
    if theirs != ours:
        raise ConfigError(f"{key}: that sweep optimized {theirs}, this one {ours}")
    found = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        replay = _Replay(trial.params)
        space.define_by_run(replay)
        extra = sorted(set(trial.params) - set(replay.distributions))
        problems = replay.outside + [f"{name} (not in this space)" for name in extra]
        if problems:
            raise ConfigError(
                f"{key}: trial {trial.number} has params outside search_space "
                f"'{space.name}': {'; '.join(problems)}"
            )
        found.append(
            optuna.trial.create_trial(
                params=trial.params,
                distributions={n: replay.distributions[n] for n in trial.params},
                values=trial.values,
                user_attrs={"warm_start_from": f"{source.name}#{trial.number}"},
            )
        )
    return found


def warm_start_trials(
    ref: StudyRef, objectives: list[tuple[str, str]], space: Any, warm_from: str
) -> list[Any]:
    """Sweep ``warm_from``'s finished trials, checked for this sweep (reads only).

    Raises:
        ConfigError: no study of sweep ``warm_from`` in the storage, or its trials do
            not fit this sweep (objective, params).
    """
    name = newest_study(ref.storage, warm_from)
    if name is None:
        raise ConfigError(
            f"warm_start={warm_from}: no study of a sweep of that name in "
            f"study.storage={ref.storage}"
        )
    return warm_trials(StudyRef(name, ref.storage), space, objectives)


def open_study(
    ref: StudyRef,
    objectives: list[tuple[str, str]],
    space: Any,
    warm: list[Any] | None = None,
) -> int:
    """Create the sweep's study (``OptunaSearch`` loads it by name) holding the ``warm``
    trials (``warm_start_trials``); returns how many."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what happened
    trials = warm or []
    study = optuna.create_study(
        storage=ref.open_storage(),
        study_name=ref.name,
        directions=["minimize" if mode == "min" else "maximize" for _, mode in objectives],
        load_if_exists=True,
    )
    study.set_user_attr(OBJECTIVE_ATTR, signature(objectives))
    study.set_user_attr(SPACE_ATTR, space.name)
    study.add_trials(trials)
    return len(trials)
