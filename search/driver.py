"""The sweep driver: settings -> data -> MLflow parent run -> Ray Tune -> best model.

Reads top to bottom like Ray Tune's own examples: prepare (everything that can be
checked: config, data, task, objective, tracking backend, before Ray starts, so a bad
input costs seconds, not a cluster start-up), fit, select the final model, record it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import yaml

from dnn_sweep.errors import ConfigError, DataError, SweepError, UserError
from search import storage
from search.algorithms import Algorithms, make_algorithms
from search.budget import FinalReserve, FinalWork
from search.callbacks import (
    MLflowTrialCallback,
    bind,
    error_text,
    flush_records,
    outcome_of,
    trial_label,
    trial_params,
)
from search.final_model import default_size
from search.finish import finish, reopen
from search.lease import Lease
from search.node_metrics import NodeMetrics
from search.preload import Preload
from search.pretrain import ensure_source
from search.private_apis import mend_reset_failures
from search.progress import ProgressCallback
from search.quiet import log_to, quietly, run_log
from search.ray_runtime import check_address, check_local_gpus, start_ray, wait_for_gpus
from search.results import SweepResults
from search.retention import mend
from search.settings import Settings
from search.shared_features import SharedFeatures, shared_features
from search.study import StudyRef, open_study, warm_start_trials
from search.summary import MODEL_TAG, SweepSummary, from_parent
from search.sweep_state import find_state, with_secrets, write_state
from search.transfer_source import Source, resolve_source
from search.tune_trial import TrialOptions, run_trial
from tracking.health import check_reachable
from tracking.recorder import DatasetRecord, SweepRecorder, TrialEnd, TrialOutcome
from tracking.registry import check_registered_inputs
from tracking.source import source_tags
from trainables.costs import COSTS
from trainables.data import Loaded, load_dataset
from trainables.task import Objective


@dataclass(frozen=True)
class UserInputs:
    """What the Python API can give besides the config: data already in memory (it
    replaces the ``dataset`` group) and a model builder of the user's own."""

    loaded: Loaded | None = None
    builder: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Plan:
    """A checked sweep, ready to run: everything ``prepare`` found out before Ray."""

    settings: Settings
    data: Any
    objective: Objective
    algorithms: Algorithms | None
    folder: str | None = None
    state: dict[str, Any] | None = None
    builder: Callable[..., Any] | None = None
    run_name: str = ""  # the new Tune run's name (and its Optuna study's)
    study: StudyRef | None = None  # the sweep's stored Optuna study (None: PBT)
    warm_trials: tuple[Any, ...] = ()  # warm_start's sweep's trials, checked for this one
    more: int = 0  # trials a resume adds, as a new Tune run (segment)
    segments: tuple[str, ...] = ()  # the sweep's earlier, finished Tune runs
    source: Source | None = None  # transfer.source, loaded and checked
    # the frozen-layer cache its trials share (set only with transfer.cache on)
    features: SharedFeatures | None = None

    @property
    def cache(self) -> bool | SharedFeatures:
        """What a transfer trial caches its frozen outputs with (``transfer.cache``)."""
        return self.features if self.features is not None else self.settings.transfer_cache

    @property
    def round(self) -> int:
        """Which final phase this run ends with: 1, then one more per added segment."""
        return len(self.segments) + 1 + (1 if self.more else 0)


def prepare(
    settings: Settings, inputs: UserInputs | None = None, overrides: list[str] | None = None
) -> Plan:
    """Resume state, data, task, objective, searcher, scheduler and tracking backend,
    all checked before Ray starts.

    Raises:
        ConfigError / DataError / TrackingError: naming the offending key or file.
    """
    inputs = inputs or UserInputs()
    folder, state, run_name = None, None, f"{settings.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    Lease(settings.storage_path, settings.name).check()  # a live driver: refused at once
    if settings.resume:
        folder, state = find_state(settings.storage_path, settings.name)
        config = with_secrets(state["config"], settings.resolved, settings.name)
        state = {**state, "config": config}
        check_resume_overrides(settings.resolved, state, overrides or [])
        settings = Settings.from_config(
            {**state["config"], "trials": max(settings.trials, _planned(state))}
            if _overrides_trials(overrides)
            else state["config"],
            lr_suggestion=state["lr_suggestion"],
            custom_params=inputs.builder is not None,
        )
    if settings.cluster_address is not None:
        check_address(settings.cluster_address)
    elif settings.gpus_per_trial > 0:
        check_local_gpus(settings.gpus_per_trial)
    data, settings = _load(settings, inputs)
    objective = Objective.for_task(data.task, settings.objective_metric, settings.objective_mode)
    if settings.ensemble_size is None:
        size = default_size(objective, bool(settings.objectives))
        settings = replace(settings, ensemble_size=size)
    _check_objectives(settings, data.task)
    source = _transfer(settings, inputs, data.spec)
    settings.space.check_data(data.spec, transfer=source is not None)
    if inputs.builder is not None:
        from search.user_model import check_builder, ship

        ship(inputs.builder)
        check_builder(inputs.builder, settings.space, data.spec, settings.seed)
    segments = tuple(state.get("segments", [])) if state else ()
    plan = Plan(
        settings,
        data,
        objective,
        None,
        folder,
        state,
        inputs.builder,
        run_name,
        segments=segments,
        source=source,
    )
    check_reachable(settings.tracking_uri)
    check_registered_inputs(
        settings.tracking_uri, settings.registered_model, data.inputs.schema_digest(), data.name
    )
    return _with_algorithms(plan)  # before Ray starts, so a bad option fails in seconds


def _transfer(settings: Settings, inputs: UserInputs, spec: Any) -> Source | None:
    """The transfer source, found and checked against the data (None: no transfer).

    Raises:
        ConfigError: a source that cannot be used, or an option that cannot go with it.
    """
    if settings.transfer_source is None:
        return None
    if inputs.builder is not None:
        raise ConfigError(
            "transfer.source: reuses the layers of an MLP in our builder's terms; not with "
            "a build_model of your own"
        )
    if settings.scheduler.name == "pbt":
        raise ConfigError(
            "scheduler.name=pbt: not with transfer.source (PBT rebuilds a trial's model "
            "from its params alone)"
        )
    return resolve_source(settings.transfer_source, settings.tracking_uri, spec)


def _check_objectives(settings: Settings, task: Any) -> None:
    """Every validation metric in ``objectives`` is one the task reports, and several
    objectives come without an ensemble (which follows the first alone).

    Raises:
        ConfigError / TaskError: naming the objective.
    """
    from trainables.task import TaskError

    if not settings.objectives:
        return
    if settings.ensemble_size > 1:
        raise ConfigError(
            f"ensemble.size={settings.ensemble_size}: with several objectives the registered "
            "model is chosen from the Pareto front (pareto.tolerance); use ensemble.size=1"
        )
    for metric, mode in settings.objectives[1:]:
        if metric.startswith("val_"):
            try:
                Objective.for_task(task, metric, mode)
            except TaskError as exc:
                raise ConfigError(f"objectives: {exc}") from None


def _with_algorithms(plan: Plan) -> Plan:
    """The plan with the searcher, scheduler and study of its new Tune run, if it has
    one: a new sweep, or the trials a resume adds (asking the sweep's own study).

    Raises:
        ConfigError: bad options; a warm start that does not fit; trials added to a
            sweep without a stored study.
    """
    s, state = plan.settings, plan.state
    more = s.trials - _planned(state) if state is not None else s.trials
    if more <= 0:
        return plan
    pbt = s.scheduler.name == "pbt"
    if pbt and (s.warm_start or state is not None):
        key = "warm_start" if state is None else f"trials={s.trials}"
        raise ConfigError(f"{key}: scheduler=pbt draws its population without a study")
    study, warm = None, ()
    if state is not None:
        if not state.get("study"):
            raise ConfigError(
                f"trials={s.trials}: sweep '{s.name}' has no stored Optuna study to add "
                "trials to (it predates stored studies); start a new sweep"
            )
        stored = state["study"]  # its URL masked: the real one is the config's own
        study = StudyRef(**with_secrets(stored, {**stored, "storage": s.study_storage}, s.name))
    elif not pbt:
        study = StudyRef(plan.run_name, s.study_storage)
        if s.warm_start:  # reads only: the study itself is written once Ray runs
            warm = tuple(warm_start_trials(study, _objectives(plan), s.space, s.warm_start))
    plan = replace(plan, study=study, warm_trials=warm, more=more if state else 0)
    return replace(plan, algorithms=_algorithms(plan, None))


def _algorithms(plan: Plan, study: StudyRef | None) -> Algorithms:
    """The new Tune run's searcher and scheduler, over ``study`` (None: in memory, as
    ``prepare`` builds them to check every option before anything is written)."""
    s = plan.settings
    return make_algorithms(
        s.space,
        s.searcher,
        s.scheduler,
        s.seed + _planned(plan.state),  # added trials: not the sweep's first draws again
        s.max_concurrent,
        plan.objective,
        s.max_epochs,
        plan.more or s.trials,
        study,
        s.objectives,
    )


def _objectives(plan: Plan) -> list[tuple[str, str]]:
    """What the study optimizes: ``objectives``, or the one objective."""
    return list(plan.settings.objectives) or [(plan.objective.metric, plan.objective.mode)]


def _with_study(plan: Plan) -> Plan:
    """Once Ray runs (a cluster that cannot be joined leaves no file behind): a new
    sweep's study written, with its warm-start trials, and the searcher over it."""
    if plan.study is None or plan.algorithms is None:
        return plan
    if plan.state is None:
        open_study(plan.study, _objectives(plan), plan.settings.space, list(plan.warm_trials))
    return replace(plan, algorithms=_algorithms(plan, plan.study))


def _planned(state: dict[str, Any] | None) -> int:
    """Trials a stored sweep has planned over all its segments so far."""
    if state is None:
        return 0
    return int(state.get("planned", state["config"]["trials"]))


def _overrides_trials(overrides: list[str] | None) -> bool:
    return any(line.split("=", 1)[0].lstrip("+~") == "trials" for line in overrides or [])


# What a resume may be told: which sweep to continue, and where it is.
RESUME_KEYS = ("resume", "name", "ray.storage_path")


def check_resume_overrides(
    now: dict[str, Any], state: dict[str, Any], overrides: list[str]
) -> None:
    """A resume continues a sweep as it was configured; it may add trials (a larger
    ``trials``). Any other change is refused in one line (never dropped silently).

    Raises:
        ConfigError: naming the override and the sweep's own value.
    """
    from omegaconf import OmegaConf

    stored = state["config"]
    if _overrides_trials(overrides) and now.get("trials", 0) < _planned(state):
        raise ConfigError(
            f"trials={now.get('trials')}: sweep '{stored.get('name')}' has planned "
            f"{_planned(state)} trials; resume=true can add trials, not remove them"
        )

    def at(config: dict[str, Any], key: str) -> Any:
        return OmegaConf.select(OmegaConf.create(config), key, default=None)

    for line in overrides:
        key = line.split("=", 1)[0].lstrip("+~")
        if key in RESUME_KEYS or key == "trials" or key.startswith("hydra."):
            continue
        mine, theirs = at(now, key), at(stored, key)
        if OmegaConf.is_config(mine):
            mine = OmegaConf.to_container(mine)
        if OmegaConf.is_config(theirs):
            theirs = OmegaConf.to_container(theirs)
        if mine != theirs:
            raise ConfigError(
                f"{line}: resume=true continues sweep '{stored.get('name')}' as it was "
                f"configured ({key}={theirs}); start a new sweep (another name) to change it"
            )


def _finished(plan: Plan) -> SweepSummary | None:
    """The summary of a resumed sweep that had already finished (its model registered,
    its parent run closed) and gets no more trials, else None."""
    if plan.state is None:
        return None
    settings = plan.settings
    recorder = SweepRecorder(settings.tracking_uri, settings.name)
    run = recorder.parent(plan.state["parent_run_id"])
    if run.info.status != "FINISHED" or MODEL_TAG not in run.data.tags or plan.more:
        return None
    return from_parent(run, settings.name, settings.tracking_uri, 0.0)


def _load(settings: Settings, inputs: UserInputs) -> tuple[Any, Settings]:
    """The data in memory, or a table or image folder streamed through Ray Data (then,
    on this machine, one CPU stays free for Ray Data's reads)."""
    from search.streaming import free_cpu_needed, open_streamed, wants_streaming

    if inputs.loaded is not None or not wants_streaming(settings.dataset):
        return load_dataset(settings.dataset, settings.seed, settings.task, inputs.loaded), settings
    data = open_streamed(settings.dataset, settings.seed, settings.task)
    room = free_cpu_needed(
        settings.cluster_address, settings.max_concurrent, settings.cpus_per_trial
    )
    if room is None:
        return data, settings
    if settings.resolved.get("max_concurrent") is not None:
        raise ConfigError(
            f"max_concurrent={settings.max_concurrent}: a streaming sweep leaves one of this "
            f"machine's CPUs to Ray Data's reads; at most {room} here"
        )
    return data, replace(settings, max_concurrent=room)


def _sweep_params(plan: Plan) -> dict[str, Any]:
    s, data = plan.settings, plan.data
    sizes = data.sizes()
    return {
        "name": s.name,
        "trials": s.trials,
        "max_epochs": s.max_epochs,
        "max_concurrent": s.max_concurrent,
        "gpus_per_trial": s.gpus_per_trial,
        "max_failures": s.max_failures,
        "checkpoint_frequency": s.checkpoint_frequency,
        "seed": s.seed,
        "dataset": data.name,
        "inputs": data.inputs.describe(),
        "task": data.task.kind,
        "task.classes": ",".join(data.task.classes)[:500],
        "objective.metric": plan.objective.metric,
        "objective.mode": plan.objective.mode,
        "objectives": ",".join(f"{m}:{mode}" for m, mode in s.objectives),
        "search_space": s.space.name,
        "model": "build_model (Python API)" if plan.builder else "mlp",
        "searcher": s.searcher.name,
        "scheduler": s.scheduler.name,
        "cpus_per_trial": s.cpus_per_trial,
        "mc_dropout_samples": s.mc_dropout_samples,
        "train_size": sizes["train"],
        "val_size": sizes["val"],
        "test_size": sizes["test"],
        **(plan.source.params() if plan.source else {}),
        "study.name": plan.study.name if plan.study else "",
        "study.storage": plan.study.storage if plan.study else "",
        "warm_start": s.warm_start or "",
        "warm_start.trials": len(plan.warm_trials),
    }


def _trial_table(results: Any) -> list[TrialEnd]:
    """Every trial's final state, from Tune's own records (not from callbacks, which a
    killed driver may have missed)."""
    table = []
    for trial in results.trials:
        errored = trial.status == "ERROR"
        outcome, reason = outcome_of(trial.last_result, errored)
        table.append(
            TrialEnd(
                trial_id=trial.trial_id,
                name=trial_label(trial),
                params=trial_params(trial),
                outcome=outcome,
                reason=reason,
                epochs=int((trial.last_result or {}).get("epoch", 0)),
                error=error_text(trial) if errored else None,
                retried=trial.num_failures > 0,
            )
        )
    return table


def _outcome_counts(table: list[TrialEnd]) -> dict[str, int]:
    counts = {o.tag: 0 for o in TrialOutcome}
    for t in table:
        counts[t.outcome.tag] += 1
    return counts


def _budget(settings: Settings, started_at: float) -> float | None:
    """``time_budget_s`` counts from ``started_at`` (the command's start, as a user reads
    "10 minutes"); Ray's own clock starts at ``fit``, after imports, data and Ray."""
    if settings.time_budget_s is None:
        return None
    return max(1.0, settings.time_budget_s - (time.time() - started_at))


def _restored(plan: Plan, trainable: Any, say: Callable[[str], None]) -> Any:
    """The Tuner a sweep left in ``plan.folder`` (Tune restores its own searcher and
    scheduler; a finished one fits at once), its lost checkpoints mended."""
    from ray import tune

    tuner = tune.Tuner.restore(
        plan.folder,
        trainable=_wrapped(plan, trainable),
        resume_unfinished=True,
        resume_errored=False,
    )
    for line in mend(tuner.get_results()):
        say(f"  resume: {line}")
    return tuner


def _earlier(plan: Plan, trainable: Any) -> list[Any]:
    """The result grids of the sweep's earlier, finished segments."""
    from ray import tune

    wrapped = _wrapped(plan, trainable)
    return [tune.Tuner.restore(f, trainable=wrapped).get_results() for f in plan.segments]


def _fits(
    plan: Plan,
    recorder: SweepRecorder,
    trainable: Any,
    started_at: float,
    say: Callable[[str], None],
) -> Iterator[Any]:
    """Tune's fits of this command, each yielding its result grid: the restored run
    (resume), then the new one (a new sweep, or the trials a resume adds)."""
    mend_reset_failures()
    if plan.folder is not None:
        yield _restored(plan, trainable, say).fit()
    if plan.algorithms is None:
        return
    if plan.state is not None:  # trials added: the final phase is done again after them
        assert plan.study is not None
        say(f"  adding {plan.more} trials (Optuna study {plan.study.name})")
        reopen(recorder)
    tuner = _new_tuner(plan, _wrapped(plan, trainable), _budget(plan.settings, started_at))
    write_state(_new_folder(plan), _state(plan, recorder))
    yield tuner.fit()


def _state(plan: Plan, recorder: SweepRecorder) -> dict[str, Any]:
    """What ``resume=true`` reads back from a new Tune run's folder."""
    earlier = (*plan.segments, plan.folder) if plan.folder else plan.segments
    return {
        "config": {**plan.settings.resolved, "trials": plan.settings.trials},
        "lr_suggestion": plan.settings.lr_suggestion,
        "parent_run_id": recorder.parent_run_id,
        "tracking_uri": plan.settings.tracking_uri,
        "study": None if plan.study is None else vars(plan.study),
        "segments": list(earlier),
        "planned": plan.settings.trials,
    }


def _wrapped(plan: Plan, trainable: Any) -> Any:
    """The trainable with the data (object store), its settings and its resources."""
    from ray import tune

    settings, objective = plan.settings, plan.objective
    return tune.with_resources(
        tune.with_parameters(
            trainable,
            data=plan.data,
            settings=TrialOptions(
                max_epochs=settings.max_epochs,
                seed=settings.seed,
                objective=(objective.metric, objective.mode),
                checkpoint_frequency=settings.checkpoint_frequency,
                tensorboard=settings.tensorboard,
                builder=plan.builder,
                costs=any(m in COSTS for m, _ in settings.objectives),
                source=plan.source.saved if plan.source else None,
                cache=plan.cache,
                steps_per_execution=settings.steps_per_execution,
            ),
        ),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )


def _new_tuner(plan: Plan, wrapped: Any, budget: float | None) -> Any:
    """A Tuner for the plan's new Tune run: its searcher and scheduler, its trials (all
    of a new sweep's, or those a resume adds)."""
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    settings, objective = plan.settings, plan.objective
    algorithms = plan.algorithms
    assert algorithms is not None
    return tune.Tuner(
        wrapped,
        param_space=algorithms.param_space,
        tune_config=tune.TuneConfig(
            metric=objective.metric,
            mode=objective.mode,
            search_alg=algorithms.search_alg,
            scheduler=algorithms.scheduler,
            # a population (PBT) is a grid: each drawn config once
            num_samples=1 if algorithms.param_space else plan.more or settings.trials,
            time_budget_s=budget,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=plan.run_name,
            storage_path=settings.storage_path,
            callbacks=[
                JsonLoggerCallback(),  # read back by Tune's ResultGrid (see ray_runtime)
                MLflowTrialCallback(),
                ProgressCallback(
                    plan.more or settings.trials,
                    max_epochs=settings.max_epochs,
                    budget_s=budget,
                    objective=objective,
                ),
            ],
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=None,  # all, until the sweep ends: see search/retention.py
                checkpoint_score_attribute=objective.metric,
                checkpoint_score_order=objective.mode,
            ),
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            stop=_final_reserve(plan, budget),
            verbose=0,
        ),
    )


def _final_reserve(plan: Plan, budget: float | None) -> FinalReserve | None:
    """With a time budget, a stopper that leaves the final phase's training time in it
    (none when the final phase does not train)."""
    s = plan.settings
    members = min(s.ensemble_size, s.ensemble_candidates) if s.refit else 0
    top_k = s.rechecked
    if budget is None or not (members or top_k):
        return None
    sizes = plan.data.sizes()
    work = FinalWork(
        recheck_top_k=top_k,
        recheck_seeds=s.recheck_seeds,
        refit_members=members,
        max_epochs=s.max_epochs,
        at_once=s.max_concurrent,
        refit_scale=(sizes["train"] + sizes["val"]) / max(1, sizes["train"]),
    )
    return FinalReserve(budget, work, plan.objective)


def _open_records(plan: Plan, say: Callable[[str], None]) -> SweepRecorder:
    """The sweep's MLflow parent run: a new one, or the one a resumed sweep left open."""
    settings = plan.settings
    recorder = SweepRecorder(settings.tracking_uri, settings.name)
    if plan.state is not None:
        recorder.attach(plan.state["parent_run_id"])
        say(f"Resuming sweep '{settings.name}' from {plan.folder}")
    else:
        recorder.start_sweep(
            params=_sweep_params(plan),
            tags={"sweep.name": settings.name, **source_tags()},
            config_yaml=yaml.safe_dump(settings.resolved, sort_keys=False),
        )
        recorder.log_datasets(_datasets(plan.data))
    bind(recorder)
    return recorder


def _datasets(data: Any) -> list[DatasetRecord]:
    """The sweep's three splits as MLflow dataset inputs of the parent run."""
    sizes = data.sizes()
    return [
        DatasetRecord(data.name, data.digest(split), split, sizes[split], data.inputs.describe())
        for split in ("train", "val", "test")
    ]


def _announce(plan: Plan, recorder: SweepRecorder, say: Callable[[str], None]) -> None:
    s, data = plan.settings, plan.data
    say(
        f"Sweep '{s.name}': {data.task.kind} on {data.name} ({data.inputs.describe()}, "
        f"{data.sizes()}), optimizing {plan.objective.metric} ({plan.objective.mode}); "
        f"{s.trials} trials of search space '{s.space.name}', {s.searcher.name} + "
        f"{s.scheduler.name}, {s.max_concurrent} at a time; "
        f"MLflow run {recorder.parent_run_id} at {s.tracking_uri}"
    )
    for note in data.notes:
        say(f"  {note}")
    if plan.warm_trials:
        n = len(plan.warm_trials)
        say(f"  warm start: {n} finished trials of sweep '{s.warm_start}' seed the sampler")


@quietly  # TensorFlow's and Ray's own messages to the sweep's log (search/quiet.py)
def run_sweep(
    settings: Settings,
    echo: Callable[[str], None] = print,
    trainable: Any = run_trial,
    inputs: UserInputs | None = None,
    started_at: float | None = None,
    overrides: list[str] | None = None,
) -> SweepSummary:
    """Run a whole sweep (or continue one: ``settings.resume``) and return its summary.
    ``started_at`` (wall-clock seconds) is where ``time_budget_s`` counts from (default:
    now); ``overrides`` are the ones the user gave (a resume refuses those it cannot
    honour).

    Raises:
        ConfigError / DataError / TrackingError: bad input, before any trial starts.
        NoResultError: the sweep ran but no trial finished an epoch.
    """
    from tracking.secrets import mask

    started = time.monotonic()
    started_at = time.time() if started_at is None else started_at

    def say(line: str) -> None:  # every line the sweep prints, credentials masked
        echo(mask(line))

    if ensure_source(settings, run_sweep, say):  # its own budget: this one's starts now
        started, started_at = time.monotonic(), time.time()
    plan = prepare(settings, inputs, overrides)
    done = _finished(plan)
    if done is not None:
        say(f"Sweep '{plan.settings.name}' had finished: nothing to resume")
        return done

    return _on_ray(plan, trainable, (started, started_at), say)


def _on_ray(
    plan: Plan, trainable: Any, clock: tuple[float, float], say: Callable[[str], None]
) -> SweepSummary:
    """Start (or join) Ray, hold the sweep's lease, open the records, run the sweep;
    the lease is released and Ray shut down after."""
    import ray

    started, started_at = clock
    # Ray first: a cluster that cannot be joined fails before anything is written
    owns_ray = start_ray(plan.settings)
    lease = None
    try:
        if plan.settings.cluster_address is not None and plan.settings.gpus_per_trial > 0:
            waited = wait_for_gpus(plan.settings, say)  # an autoscaler's minutes are free
            started, started_at = started + waited, started_at + waited
        # the first thing written: nothing is, when Ray or its GPUs are not there
        lease = Lease(plan.settings.storage_path, plan.settings.name).acquire(say)
        plan = _with_study(plan)
        logs = log_to(run_log(plan.settings.storage_path, plan.folder or plan.run_name))
        recorder = _open_records(plan, say)
        _announce(plan, recorder, say)
        if logs:
            say(logs)
        return _run(plan, recorder, trainable, (started, started_at), say)
    finally:
        if lease is not None:
            lease.release()
        if owns_ray:
            ray.shutdown()


def _run(
    plan: Plan,
    recorder: SweepRecorder,
    trainable: Any,
    clock: tuple[float, float],
    say: Callable[[str], None],
) -> SweepSummary:
    """Tune's fit, then the final phase; the parent run is closed whatever happens."""
    status = "FAILED"
    try:
        started, started_at = clock  # monotonic, wall
        grids = _earlier(plan, trainable)
        with _shared_features(plan, recorder) as plan:
            cpu_before, preload = time.process_time(), Preload().start()
            with _system_metrics(plan.settings, recorder):
                grids += list(_fits(plan, recorder, trainable, started_at, say))
            flush_records()  # what a tracking hiccup held back
            results = SweepResults(grids)
            # the driver's own CPU while trials ran: Tune's loop, the searcher, the
            # scheduler, MLflow logging, progress (what each more trial costs the driver)
            driver_cpu = time.process_time() - cpu_before - preload.join()
            table = _trial_table(results)
            recorder.reconcile(table)
            counts = _outcome_counts(table)
            summary = _finished_phase(plan, recorder, (results, counts, started, driver_cpu), say)
        status = "FINISHED"
        return summary
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if status != "FINISHED":  # the store may be what failed: then the error says so
            with contextlib.suppress(Exception):
                recorder.finish_sweep({}, {}, status=status)


def _finished_phase(
    plan: Plan,
    recorder: SweepRecorder,
    ran: tuple[Any, Any, float, float],
    say: Callable[[str], None],
) -> SweepSummary:
    """``finish`` after the trials ran: an error it meets is no longer bad input (exit 2,
    "nothing ran") but a sweep to finish (``SweepError``, exit 1, saying how)."""
    results, counts, started, driver_cpu = ran
    try:
        return finish(plan, recorder, results, counts, started, driver_cpu, say)
    except UserError as exc:
        raise SweepError(
            f"{exc} (after its trials ran: they are kept; fix this, then "
            f"`sweep resume=true name={plan.settings.name}` finishes the sweep)"
        ) from exc


@contextlib.contextmanager
def _shared_features(plan: Plan, recorder: SweepRecorder) -> Iterator[Plan]:
    """The plan with a frozen-layer cache its trials and re-checks share (a transfer
    sweep with ``transfer.cache``), and how much it was used on the parent run."""
    if plan.source is None or not plan.settings.transfer_cache:
        yield plan
        return
    with shared_features() as features:
        try:
            yield replace(plan, features=features)
        finally:
            stats = features.stats()
            recorder.log_metrics(
                recorder.parent_run_id,
                {f"transfer_cache_{k}": float(v) for k, v in stats.items()},
            )


def _system_metrics(settings: Settings, recorder: SweepRecorder) -> Any:
    """CPU, memory (and GPU) of every node on the parent run while the trials run."""
    if not settings.system_metrics:
        return contextlib.nullcontext()
    return NodeMetrics(recorder, on_cluster=settings.cluster_address is not None)


def _new_folder(plan: Plan) -> str:
    """The experiment folder of the plan's new Tune run (where its state and ours live):
    the storage path and run name the driver gave its ``RunConfig``."""
    return storage.join(plan.settings.storage_path, plan.run_name)


__all__ = ["ConfigError", "DataError", "SweepSummary", "UserInputs", "run_sweep"]
