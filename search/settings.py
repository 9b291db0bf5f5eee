"""The composed Hydra config, checked once against the schema (``search.schema``) into
the typed, picklable settings a sweep runs with: paths made absolute, the concurrency
and the study's storage decided for this machine, the search space built."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnn_sweep.errors import ConfigError
from search.schema import (
    LrFind,
    Scheduler,
    Searcher,
    SweepConfig,
    Tensorboard,
    sweep_name,
    validate,
)
from search.space import SearchSpace


def _concurrency(cfg: SweepConfig) -> int:
    """``max_concurrent``, or (null) one trial per ``trial.cpus`` CPUs of this machine."""
    cores, cpus = os.cpu_count() or 1, cfg.trial.cpus
    if cfg.cluster.name == "local" and cpus > cores:
        raise ConfigError(f"trial.cpus={cpus}: this machine has {cores} CPUs")
    return cfg.max_concurrent or max(1, cores // cpus)


def _storage_path(storage: str | None) -> str:
    """``ray.storage_path`` (null = ./ray_results), absolute unless it is a URI."""
    storage = storage or "ray_results"
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def _absolute_sqlite(uri: str) -> str:
    """sqlite:///relative.db -> sqlite:////abs/relative.db, so Ray workers, Hydra and
    later `mlflow ui` calls all see the same file whatever their working directory."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).expanduser().resolve())
    return uri


def _study_storage(storage: str | None, tracking_uri: str) -> str:
    """``study.storage``, or ``optuna.db`` beside a sqlite tracking store (else in the
    launch folder): an absolute sqlite URL, so every later command finds the same file."""
    if storage is not None:
        return _absolute_sqlite(storage)
    prefix = "sqlite:///"
    folder = Path(tracking_uri[len(prefix) :]).parent if tracking_uri.startswith(prefix) else Path()
    return prefix + str((folder / "optuna.db").resolve())


def _dashboard(wanted: bool) -> bool:
    """``cluster.dashboard``: Ray's dashboard needs ``ray[default]``; say so before Ray
    starts rather than fail inside ``ray.init``."""
    missing = _missing_extra("ray", "default") if wanted else []
    if missing:
        raise ConfigError(
            f"cluster.dashboard=true: Ray's dashboard needs its extra packages (missing "
            f"{', '.join(missing)}); pip install 'ray[default]' (or leave cluster.dashboard=false)"
        )
    return wanted


def _missing_extra(package: str, extra: str) -> list[str]:
    """The requirements of ``package[extra]`` (as its metadata declares them) that are
    not installed here."""
    from importlib import metadata

    from packaging.requirements import Requirement

    missing = []
    for line in metadata.requires(package) or []:
        req = Requirement(line)
        if req.marker is None or not req.marker.evaluate({"extra": extra}):
            continue
        try:
            metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            missing.append(req.name)
    return missing


def _tensorboard(tb: Tensorboard, name: str) -> dict[str, Any] | None:
    """Per-trial TensorBoard options, or None when off."""
    if not tb.enabled:
        return None
    folder = tb.log_dir if "://" in tb.log_dir else str(Path(tb.log_dir).expanduser().resolve())
    return {
        "log_dir": f"{folder}/{name}",
        "histogram_freq": tb.histogram_freq,
        "profile_batch": tb.profile_batch,
    }


@dataclass(frozen=True)
class Settings:
    """Everything a sweep needs, checked. ``resolved`` keeps the full config for MLflow."""

    name: str
    trials: int
    max_epochs: int
    max_concurrent: int
    seed: int
    cpus_per_trial: int
    steps_per_execution: int  # trial.steps_per_execution: Keras' compile argument
    gpus_per_trial: float
    mc_dropout_samples: int
    lr_find: LrFind
    checkpoint_frequency: int
    checkpoint_keep: int
    max_failures: int
    cluster_address: str | None
    dashboard: bool
    dashboard_host: str
    gpu_wait_s: float
    resume: bool
    lr_suggestion: float | None
    time_budget_s: float | None
    dataset: dict[str, Any]
    space: SearchSpace
    searcher: Searcher
    scheduler: Scheduler
    tracking_uri: str
    registered_model: str
    system_metrics: bool
    storage_path: str
    study_storage: str
    warm_start: str | None
    resolved: dict[str, Any]
    tensorboard: dict[str, Any] | None
    task: str
    objective_metric: str | None
    objective_mode: str | None
    objectives: tuple[tuple[str, str], ...]  # two or more: multi-objective search
    pareto_tolerance: float
    ensemble_size: int | None  # None until the objective is known (driver.prepare)
    ensemble_candidates: int
    refit: bool  # final.refit: the registered model retrained on train + val
    recheck_top_k: int  # re-check the best k configs on fresh seeds (0: off)
    recheck_seeds: int
    transfer_source: str | None  # transfer.source, as given (search/transfer_source.py)
    transfer_cache: bool
    transfer_pretrain: tuple[str, ...]  # a sweep that registers the source, if missing
    # the user's config folders (-cd, hydra.searchpath) as search-path entries: the CLI
    # and the Python API set them; a pretrain sweep composes with them too
    searchpath: tuple[str, ...] = ()

    @property
    def rechecked(self) -> int:
        """Configs the final phase re-checks: ``recheck.top_k``, but only the Pareto
        rule's choice with several objectives (it is not re-picked)."""
        return min(self.recheck_top_k, 1) if self.objectives else self.recheck_top_k

    @classmethod
    def from_config(
        cls,
        cfg: Mapping[str, Any],
        lr_suggestion: float | None = None,
        custom_params: bool = False,
    ) -> Settings:
        """A resolved config dict checked against the schema (``search.schema``), with
        ``lr_suggestion`` (the lr finder's result, for spaces that use it); with
        ``custom_params`` (a user's ``build_model``) the space may name params of its own.

        Raises:
            ConfigError: naming the first invalid key and what is allowed.
        """
        c: SweepConfig = validate(cfg)
        pairs = c.objective_pairs
        return cls(
            name=c.sweep_name,
            trials=c.trials,
            max_epochs=c.max_epochs,
            max_concurrent=_concurrency(c),
            seed=c.seed,
            cpus_per_trial=c.trial.cpus,
            steps_per_execution=c.trial.steps_per_execution,
            gpus_per_trial=float(c.trial.gpus),
            mc_dropout_samples=c.evaluation.mc_dropout_samples,
            lr_find=c.lr_find,
            checkpoint_frequency=c.checkpoint.frequency,
            checkpoint_keep=c.checkpoint.num_to_keep,
            max_failures=c.fault.max_failures,
            cluster_address=c.cluster.address if c.cluster.name == "remote" else None,
            dashboard=_dashboard(c.cluster.dashboard),
            dashboard_host=c.cluster.dashboard_host,
            gpu_wait_s=float(c.cluster.gpu_wait_s),
            resume=c.resume,
            lr_suggestion=lr_suggestion,
            time_budget_s=c.time_budget_s,
            dataset=dict(c.dataset),
            space=SearchSpace.from_config(
                c.search_space,
                lr_suggestion=lr_suggestion,  # type: ignore[arg-type]
                custom_params=custom_params,
            ),
            searcher=c.searcher,
            scheduler=c.scheduler,
            **_places(c),
            registered_model=c.tracking.registered_model or c.sweep_name,
            system_metrics=c.tracking.system_metrics,
            warm_start=c.warm_start,
            resolved=dict(cfg),
            task=c.task,
            objective_metric=pairs[0][0] if pairs else c.objective.metric,
            objective_mode=pairs[0][1] if pairs else c.objective.mode,
            objectives=pairs,
            pareto_tolerance=c.pareto.tolerance,
            **_after_search(c),
            transfer_source=c.transfer.source,
            transfer_cache=c.transfer.cache,
            transfer_pretrain=tuple(c.transfer.pretrain or ()),
        )


def _after_search(c: SweepConfig) -> dict[str, Any]:
    """How the registered model is made once the search ends."""
    return {
        "ensemble_size": c.ensemble.size,
        "ensemble_candidates": c.ensemble.candidates,
        "refit": c.final.refit,
        "recheck_top_k": c.recheck.top_k,
        "recheck_seeds": c.recheck.seeds,
    }


def _places(c: SweepConfig) -> dict[str, Any]:
    """Where a sweep writes, as absolute paths or URIs (every process sees the same)."""
    uri = _absolute_sqlite(c.tracking.uri)
    return {
        "tracking_uri": uri,
        "study_storage": _study_storage(c.study.storage, uri),
        "storage_path": _storage_path(c.ray.storage_path),
        "tensorboard": _tensorboard(c.tensorboard, c.sweep_name),
    }


def load_settings(
    raw: Mapping[str, Any], need_suggestion: bool = True, custom_params: bool = False
) -> Settings:
    """Validated settings from a composed, plain config; looks the lr finder's
    suggestion up in MLflow when the space takes its learning-rate range from it."""
    suggestion = None
    if SearchSpace.needs_lr_suggestion(raw.get("search_space")):
        if need_suggestion:
            from tracking.health import check_reachable
            from tracking.recorder import latest_lr_suggestion  # MLflow: only here

            uri = _absolute_sqlite(str((raw.get("tracking") or {}).get("uri")))
            check_reachable(uri)
            suggestion = latest_lr_suggestion(uri, sweep_name(raw))
        else:
            suggestion = 1.0  # the finder itself does not use the range
    return Settings.from_config(raw, lr_suggestion=suggestion, custom_params=custom_params)
