"""The composed Hydra config, validated once into typed, plain (picklable) settings."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnn_sweep.errors import ConfigError
from search.algorithms import SCHEDULERS, SEARCHERS
from search.space import SearchSpace


def _positive_int(cfg: Mapping[str, Any], key: str, label: str | None = None) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{label or key}={value!r}: must be an integer > 0")
    return value


def _options(cfg: Mapping[str, Any], group: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """A searcher's or scheduler's options, each checked (``search.algorithms``)."""
    options = cfg.get(group)
    name = options.get("name") if isinstance(options, Mapping) else options
    if name not in table:
        raise ConfigError(f"{group}.name={name!r}: allowed are {', '.join(table)}")
    table[name].checked(group, dict(options))
    return dict(options)


def _non_negative(cfg: Mapping[str, Any], key: str, label: str) -> float:
    value = cfg.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{label}={value!r}: must be a number >= 0")
    if 1 < value != int(value):
        raise ConfigError(f"{label}={value!r}: above 1, GPUs per trial must be whole")
    return float(value)


def _budget(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"time_budget_s={value!r}: must be a number of seconds > 0, or null")
    return float(value)


def _seconds(cfg: Mapping[str, Any], key: str, label: str, default: float) -> float:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{label}={value!r}: must be a number of seconds > 0")
    return float(value)


def _count(cfg: Mapping[str, Any], key: str, label: str, default: int | None = 0) -> int:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{label}={value!r}: must be an integer >= 0")
    return value


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise ConfigError(f"name={name!r}: must be a non-empty string without '/'")
    return name


def _concurrency(cfg: Mapping[str, Any], cpus: int, on_cluster: bool) -> int:
    """``max_concurrent``, or (null) one trial per ``trial.cpus`` CPUs of this machine."""
    cores = os.cpu_count() or 1
    if not on_cluster and cpus > cores:
        raise ConfigError(f"trial.cpus={cpus}: this machine has {cores} CPUs")
    if cfg.get("max_concurrent") is None:
        return max(1, cores // cpus)
    return _positive_int(cfg, "max_concurrent")


def _tracking_uri(uri: Any) -> str:
    if not isinstance(uri, str) or not uri:
        raise ConfigError(
            f"tracking.uri={uri!r}: must be an MLflow tracking URI "
            "(sqlite:///FILE.db, http://HOST:PORT, or a folder)"
        )
    return _absolute_sqlite(uri)


def _storage_path(storage: str | None) -> str:
    """``ray.storage_path`` (null = ./ray_results), absolute unless it is a URI."""
    storage = storage or "ray_results"
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def _cluster_address(cluster: Mapping[str, Any]) -> str | None:
    name, address = cluster.get("name", "local"), cluster.get("address")
    if name not in ("local", "remote"):
        raise ConfigError(f"cluster.name={name!r}: allowed are local, remote")
    if name == "local":
        return None
    if not isinstance(address, str) or not address:
        raise ConfigError(
            "cluster.address: cluster=remote needs auto, HOST:PORT or ray://HOST:PORT"
        )
    return address


def _lr_find_options(opts: Mapping[str, Any]) -> dict[str, Any]:
    min_lr, max_lr = opts.get("min_lr", 1e-5), opts.get("max_lr", 10.0)
    iterations = opts.get("iterations", 500)
    for key, value in (("min_lr", min_lr), ("max_lr", max_lr)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"lr_find.{key}={value!r}: must be a number > 0")
    if min_lr >= max_lr:
        raise ConfigError(f"lr_find.min_lr={min_lr}: must be below lr_find.max_lr={max_lr}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 20:
        raise ConfigError(f"lr_find.iterations={iterations!r}: must be an integer >= 20")
    params = opts.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError("lr_find.params: must map hyperparameter names to values")
    return {
        "min_lr": float(min_lr),
        "max_lr": float(max_lr),
        "iterations": iterations,
        "params": dict(params),
    }


def _absolute_sqlite(uri: str) -> str:
    """sqlite:///relative.db -> sqlite:////abs/relative.db, so Ray workers, Hydra and
    later `mlflow ui` calls all see the same file whatever their working directory."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).expanduser().resolve())
    return uri


def _study_storage(study: Mapping[str, Any], tracking_uri: str) -> str:
    """``study.storage``, or ``optuna.db`` beside a sqlite tracking store (else in the
    launch folder): an absolute sqlite URL, so every later command finds the same file."""
    storage = study.get("storage")
    if storage is None:
        prefix = "sqlite:///"
        folder = (
            Path(tracking_uri[len(prefix) :]).parent if tracking_uri.startswith(prefix) else Path()
        )
        return prefix + str((folder / "optuna.db").resolve())
    if not isinstance(storage, str) or "://" not in storage:
        raise ConfigError(
            f"study.storage={storage!r}: must be an RDB URL (sqlite:///FILE.db, "
            "postgresql://..., mysql://...) or null"
        )
    return _absolute_sqlite(storage)


def _warm_start(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"warm_start={value!r}: must be the name of an earlier sweep, or null")
    return value


def _flag(cfg: Mapping[str, Any], key: str, label: str, default: bool = False) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{label}={value!r}: must be true or false")
    return value


def _dashboard(cluster: Mapping[str, Any]) -> bool:
    """``cluster.dashboard``: Ray's dashboard needs ``ray[default]``; say so before Ray
    starts rather than fail inside ``ray.init``."""
    wanted = _flag(cluster, "dashboard", "cluster.dashboard")
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


def _host(value: Any) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ConfigError(
            f"cluster.dashboard_host={value!r}: must be an IP address (127.0.0.1 = this "
            "machine only, 0.0.0.0 = every interface)"
        ) from None


def _tensorboard(tb: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """Per-trial TensorBoard options, or None when off."""
    enabled = tb.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"tensorboard.enabled={enabled!r}: must be true or false")
    histogram_freq = _count(tb, "histogram_freq", "tensorboard.histogram_freq")
    profile = tb.get("profile_batch", 0)
    ok = (isinstance(profile, int) and not isinstance(profile, bool) and profile >= 0) or (
        isinstance(profile, str) and re.fullmatch(r"\d+,\d+", profile.replace(" ", ""))
    )
    if not ok:
        raise ConfigError(
            f"tensorboard.profile_batch={profile!r}: must be 0 (off), a batch number, "
            'or "START,END"'
        )
    if not enabled:  # checked all the same: a typo is not silently kept for later
        return None
    log_dir = tb.get("log_dir")
    if not isinstance(log_dir, str) or not log_dir:
        raise ConfigError(f"tensorboard.log_dir={log_dir!r}: must be a folder path")
    folder = log_dir if "://" in log_dir else str(Path(log_dir).expanduser().resolve())
    return {
        "log_dir": f"{folder}/{name}",
        "histogram_freq": histogram_freq,
        "profile_batch": profile,
    }


def _task(value: Any) -> str:
    from trainables.task import TASKS

    if value not in ("auto", *TASKS):
        raise ConfigError(f"task={value!r}: allowed are auto, {', '.join(TASKS)}")
    return str(value)


def _objective(opts: Mapping[str, Any]) -> dict[str, str | None]:
    """``objective.metric`` (a ``val_`` metric; null = the task's natural one) and
    ``objective.mode`` (min, max, or null = the metric's own direction); checked
    against the task once the data is loaded (``Objective.for_task``)."""
    if not isinstance(opts, Mapping) or set(opts) - {"metric", "mode"}:
        raise ConfigError("objective: must be {metric: NAME or null, mode: min, max or null}")
    metric, mode = opts.get("metric"), opts.get("mode")
    if metric is not None and (not isinstance(metric, str) or not metric.startswith("val_")):
        raise ConfigError(
            f"objective.metric={metric!r}: must be a validation metric (val_loss, "
            "val_accuracy, val_auc, val_rmse, val_mae), or null for the task's own"
        )
    if mode not in (None, "min", "max"):
        raise ConfigError(f"objective.mode={mode!r}: allowed are min, max (or null)")
    return {"objective_metric": metric, "objective_mode": mode}


def _objectives(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``objectives`` (``[METRIC:MODE, ...]``, two or more: multi-objective search) and
    ``pareto.tolerance``; the first objective becomes ``objective.metric``/``mode``.
    A metric is a validation metric (checked against the task later) or a cost of the
    model (``n_params``, ``latency_ms``)."""
    from trainables.costs import COSTS

    value, pareto = cfg.get("objectives"), cfg.get("pareto") or {}
    tolerance = pareto.get("tolerance", 0.005)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
        raise ConfigError(f"pareto.tolerance={tolerance!r}: must be a number >= 0")
    if value is None:
        return {"objectives": (), "pareto_tolerance": float(tolerance)}
    usage = "a list of two or more METRIC:MODE (e.g. [val_accuracy:max,n_params:min])"
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise ConfigError(f"objectives={value!r}: must be {usage}")
    parsed = []
    for item in value:
        metric, _, mode = str(item).partition(":")
        if mode not in ("min", "max") or not (metric.startswith("val_") or metric in COSTS):
            raise ConfigError(
                f"objectives: {item!r}: must be METRIC:min or METRIC:max, METRIC a validation "
                f"metric (val_accuracy, val_loss, ...) or {', '.join(COSTS)}"
            )
        parsed.append((metric, mode))
    if parsed[0][0] in COSTS:
        raise ConfigError(
            f"objectives: {value[0]!r}: the first objective (the one the scheduler, "
            "checkpoints and early stopping follow) must be a validation metric"
        )
    objective = cfg.get("objective") or {}
    if objective.get("metric") not in (None, parsed[0][0]):
        raise ConfigError(
            f"objective.metric={objective.get('metric')}: objectives names "
            f"{parsed[0][0]} first; set one of them"
        )
    return {"objectives": tuple(parsed), "pareto_tolerance": float(tolerance)}


@dataclass(frozen=True)
class Settings:
    """Everything a sweep needs, checked. ``resolved`` keeps the full config for MLflow."""

    name: str
    trials: int
    max_epochs: int
    max_concurrent: int
    seed: int
    cpus_per_trial: int
    mc_dropout_samples: int
    lr_find: dict[str, Any]
    gpus_per_trial: float
    checkpoint_frequency: int
    checkpoint_keep: int
    max_failures: int
    cluster_address: str | None
    dashboard: bool
    resume: bool
    lr_suggestion: float | None
    time_budget_s: float | None
    dataset: dict[str, Any]
    space: SearchSpace
    searcher: dict[str, Any]
    scheduler: dict[str, Any]
    tracking_uri: str
    registered_model: str
    storage_path: str
    resolved: dict[str, Any]
    tensorboard: dict[str, Any] | None = None
    dashboard_host: str = "127.0.0.1"
    gpu_wait_s: float = 600.0
    system_metrics: bool = True
    ensemble_size: int | None = None  # None until the objective is known (driver.prepare)
    ensemble_candidates: int = 10
    task: str = "auto"
    objective_metric: str | None = None
    objective_mode: str | None = None
    study_storage: str = "sqlite:///optuna.db"
    objectives: tuple[tuple[str, str], ...] = ()  # two or more: multi-objective search
    pareto_tolerance: float = 0.005
    warm_start: str | None = None
    refit: bool = False  # final.refit: the registered model retrained on train + val
    recheck_top_k: int = 0  # re-check the best k configs on fresh seeds (0: off)
    recheck_seeds: int = 2

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
        """Validate a resolved config dict (``OmegaConf.to_container(cfg, resolve=True)``).

        ``lr_suggestion``: the learning-rate finder's result, for spaces that use it.
        ``custom_params``: a user's ``build_model`` takes params of its own, so the space
        may name params our builder does not know.

        Raises:
            ConfigError: naming the first invalid key and what is allowed.
        """
        name = _name(cfg.get("name"))
        trial, cluster = cfg.get("trial") or {}, cfg.get("cluster") or {}
        cpus = _positive_int(trial, "cpus", "trial.cpus")
        tracking = cfg.get("tracking") or {}
        uri = _tracking_uri(tracking.get("uri"))
        return cls(
            name=name,
            trials=_positive_int(cfg, "trials"),
            max_epochs=_positive_int(cfg, "max_epochs"),
            max_concurrent=_concurrency(cfg, cpus, _cluster_address(cluster) is not None),
            seed=_count(cfg, "seed", "seed", default=None),
            cpus_per_trial=cpus,
            mc_dropout_samples=_count(
                cfg.get("evaluation") or {}, "mc_dropout_samples", "evaluation.mc_dropout_samples"
            ),
            lr_find=_lr_find_options(cfg.get("lr_find") or {}),
            gpus_per_trial=_non_negative(trial, "gpus", "trial.gpus"),
            **_keeping(cfg),
            **_final(cfg),
            cluster_address=_cluster_address(cluster),
            dashboard=_dashboard(cluster),
            dashboard_host=_host(cluster.get("dashboard_host", "127.0.0.1")),
            gpu_wait_s=_seconds(cluster, "gpu_wait_s", "cluster.gpu_wait_s", 600.0),
            resume=_flag(cfg, "resume", "resume"),
            lr_suggestion=lr_suggestion,
            time_budget_s=_budget(cfg.get("time_budget_s")),
            dataset=dict(cfg.get("dataset") or {}),
            space=SearchSpace.from_config(
                cfg.get("search_space"),
                lr_suggestion=lr_suggestion,  # type: ignore[arg-type]
                custom_params=custom_params,
            ),
            searcher=_options(cfg, "searcher", SEARCHERS),
            scheduler=_options(cfg, "scheduler", SCHEDULERS),
            tracking_uri=uri,
            study_storage=_study_storage(cfg.get("study") or {}, uri),
            warm_start=_warm_start(cfg.get("warm_start")),
            registered_model=str(tracking.get("registered_model") or name),
            system_metrics=_flag(tracking, "system_metrics", "tracking.system_metrics", True),
            storage_path=_storage_path((cfg.get("ray") or {}).get("storage_path")),
            resolved=dict(cfg),
            tensorboard=_tensorboard(cfg.get("tensorboard") or {}, name),
            task=_task(cfg.get("task", "auto")),
            **_objective_fields(cfg),
        )


def _keeping(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What a sweep keeps and retries: checkpoints, failures, the ensemble's members."""
    checkpoint = cfg.get("checkpoint") or {"frequency": 1, "num_to_keep": 2}
    ensemble = cfg.get("ensemble") or {"size": None, "candidates": 10}
    size = ensemble.get("size")  # null: decided with the objective (search/final_model.py)
    return {
        "checkpoint_frequency": _positive_int(checkpoint, "frequency", "checkpoint.frequency"),
        "checkpoint_keep": _positive_int(checkpoint, "num_to_keep", "checkpoint.num_to_keep"),
        "max_failures": _count(cfg.get("fault") or {}, "max_failures", "fault.max_failures"),
        "ensemble_size": None if size is None else _positive_int(ensemble, "size", "ensemble.size"),
        "ensemble_candidates": _positive_int(ensemble, "candidates", "ensemble.candidates"),
    }


def _final(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """How the registered model is chosen and trained after the search."""
    recheck = cfg.get("recheck") or {}
    return {
        "refit": _flag(cfg.get("final") or {}, "refit", "final.refit"),
        "recheck_top_k": _count(recheck, "top_k", "recheck.top_k"),
        "recheck_seeds": _positive_int({"seeds": 2, **recheck}, "seeds", "recheck.seeds"),
    }


def _objective_fields(cfg: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {**_objective(cfg.get("objective") or {}), **_objectives(cfg)}
    if fields["objectives"]:
        fields["objective_metric"], fields["objective_mode"] = fields["objectives"][0]
    return fields


def load_settings(
    raw: Mapping[str, Any], need_suggestion: bool = True, custom_params: bool = False
) -> Settings:
    """Validated settings from a composed, plain config; looks the lr finder's
    suggestion up in MLflow when the space takes its learning-rate range from it."""
    from tracking.health import check_reachable
    from tracking.recorder import latest_lr_suggestion

    suggestion = None
    if SearchSpace.needs_lr_suggestion(raw.get("search_space")):
        if need_suggestion:
            uri = _absolute_sqlite(str((raw.get("tracking") or {}).get("uri")))
            check_reachable(uri)
            suggestion = latest_lr_suggestion(uri, str(raw.get("name")))
        else:
            suggestion = 1.0  # the finder itself does not use the range
    return Settings.from_config(raw, lr_suggestion=suggestion, custom_params=custom_params)
