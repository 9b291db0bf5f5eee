"""The config schema: every key of a sweep's config, its type, its default and what it
means, declared once (pydantic models; each field's docstring is its documentation).

Hydra composes the config from these defaults (``register`` puts them in its
ConfigStore: the root keys, and the searcher, scheduler, cluster and tracking options)
and from the user's own files and overrides; ``validate`` checks the composed config
against the same models and turns pydantic's first error into one line that names the
full key and what is allowed. ``docs/reference.md``'s config tables are generated from
here (``python -m search.schema --write``).

Bounds read as the message says them: an ``int`` bound (``gt=0``) reads "an integer",
a ``float`` bound (``gt=0.0``) "a number".
"""

from __future__ import annotations

import difflib
import ipaddress
import posixpath
import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from dnn_sweep.errors import ConfigError

PositiveInt = Annotated[int, Field(gt=0)]
Count = Annotated[int, Field(ge=0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]


# A sweep's name is an MLflow experiment and registered model (no '/' or ':', not a path
# that normalizes to another: MLflow's rules), a quoted value in MLflow search filters
# (no quotes) and a Ray run folder's prefix; the registry's name column holds 256.
NAME_FORBIDDEN = "/:'\"\\"
NAME_MAX = 250


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot name a sweep or a registered model (None: it can). Checked
    with the config, before anything starts: MLflow would refuse it after training."""
    if not value.strip() or value != value.strip():
        return "must be non-empty, without leading or trailing spaces"
    bad = sorted({c for c in value if c in NAME_FORBIDDEN or not c.isprintable()})
    if bad:
        return f"must not hold {' '.join(repr(c) for c in bad)} (MLflow names and filters)"
    if value.startswith(".") or posixpath.normpath(value) != value:
        return "must not start with '.' (MLflow refuses names that read as paths)"
    if len(value) > NAME_MAX:
        return f"at most {NAME_MAX} characters"
    return None


def _checked_name(key: str) -> Callable[[str | None], str | None]:
    def check(value: str | None) -> str | None:
        problem = None if value is None else name_problem(value)
        if problem:
            raise ConfigError(f"{key}={value!r}: {problem}")
        return value

    return check


_sweep_name = _checked_name("name")


class Section(BaseModel):
    """A part of the config: typed values (no coercion: ``"5"`` is not 5), no key the
    schema does not declare, frozen once checked."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True
    )


def _refuse(key: str, why: str) -> ConfigError:
    return ConfigError(f"{key}: {why}")


# -- searchers (Optuna samplers; each seeded by `seed`) ---------------------------------


class Tpe(Section):
    """Optuna's Tree-structured Parzen Estimator."""

    name: Literal["tpe"] = "tpe"
    n_startup_trials: Count = 8
    """Random trials before TPE starts modelling."""
    multivariate: bool = True
    """Model params jointly (and conditional groups separately) rather than one by one."""
    constant_liar: bool = True
    """Pending trials count as bad results, so concurrent trials spread out."""


class RandomSearch(Section):
    """Optuna's RandomSampler."""

    name: Literal["random"] = "random"


class Cmaes(Section):
    """Optuna's CMA-ES (covariance matrix adaptation evolution strategy). It models the
    numeric params jointly; categorical and conditional params (activation, optimizer,
    per-branch params) are sampled by a seeded TPE beside it."""

    name: Literal["cmaes"] = "cmaes"
    n_startup_trials: Count = 4
    """Trials sampled (by the TPE beside it) before CMA-ES starts."""
    sigma0: Positive | None = None
    """Initial step size; null = Optuna's (a sixth of each range, in its normalized space)."""
    separable: bool = False
    """sep-CMA-ES: a diagonal covariance, for spaces with many numeric params."""
    with_margin: bool = True
    """CMA-ES with margin: keeps integer params (layers, neurons) from collapsing to one value."""


class Gp(Section):
    """Optuna's Gaussian-process Bayesian optimization (log expected improvement). Needs
    PyTorch: pip install 'dnn-sweep[gp]'. Conditional params are sampled by a seeded TPE."""

    name: Literal["gp"] = "gp"
    n_startup_trials: Count = 8
    """Random trials before the GP is fitted."""


class Qmc(Section):
    """Optuna's quasi-Monte Carlo sampler: a low-discrepancy sequence that covers the
    space more evenly than random search (no model of the results)."""

    name: Literal["qmc"] = "qmc"
    qmc_type: Literal["sobol", "halton"] = "sobol"
    """The sequence."""
    scramble: bool = True
    """Scrambled (randomized by `seed`) sequences avoid the unscrambled ones' corner bias."""


class Nsga2(Section):
    """Optuna's NSGA-II genetic algorithm: the usual choice for several objectives
    (``objectives=[...]``); also works with one."""

    name: Literal["nsga2"] = "nsga2"
    population_size: Annotated[int, Field(ge=2)] = 8
    """Trials per generation (Optuna's default, 50, is far more than a small sweep runs)."""
    mutation_prob: Probability | None = None
    """Mutation probability per param; null = 1 / number of params."""
    crossover_prob: Probability = 0.9
    """Probability that a child is a crossover of two parents."""


SEARCHERS: tuple[type[Section], ...] = (Tpe, RandomSearch, Cmaes, Gp, Qmc, Nsga2)
Searcher = Annotated[Tpe | RandomSearch | Cmaes | Gp | Qmc | Nsga2, Field(discriminator="name")]


# -- schedulers (Ray Tune; over epochs, max_t = max_epochs) -----------------------------


class Asha(Section):
    """Asynchronous successive halving: stops trials that fall behind at each rung."""

    name: Literal["asha"] = "asha"
    grace_period: PositiveInt = 1
    """Epochs every trial runs before it can be stopped (at most max_epochs)."""
    reduction_factor: Annotated[float, Field(gt=1.0)] = 3
    """Keep 1/reduction_factor of trials at each rung."""


class Fifo(Section):
    """No early stopping by the scheduler: every trial runs to max_epochs (or its own
    patience)."""

    name: Literal["fifo"] = "fifo"


class Hyperband(Section):
    """Synchronous HyperBand (Li et al., 2018; Tune's HyperBandScheduler): brackets of
    successive halving. Trials wait (paused, checkpointed) at each rung until their
    bracket is complete, then the best 1/reduction_factor go on."""

    name: Literal["hyperband"] = "hyperband"
    reduction_factor: Annotated[float, Field(gt=1.0)] = 3
    """Keep 1/reduction_factor of trials at each rung."""


class Median(Section):
    """The median stopping rule (Golovin et al., 2017; Tune's MedianStoppingRule): stop a
    trial whose best objective so far is worse than the median of the other trials'
    running averages at the same epoch."""

    name: Literal["median"] = "median"
    grace_period: PositiveInt = 1
    """Epochs every trial runs before it can be stopped (at most max_epochs)."""
    min_samples_required: PositiveInt = 3
    """Trials that must have reached an epoch before the median there is trusted."""


def _names(value: list[str]) -> list[str]:
    if not value:
        raise ConfigError(f"scheduler.mutate={value!r}: must be a non-empty list of param names")
    return value


class Pbt(Section):
    """Population-based training (Jaderberg et al., 2017; Tune's PopulationBasedTraining).
    The searcher draws the whole population up front (`trials` configurations); every
    `perturbation_interval` epochs a trial in the bottom quantile continues from a top
    trial's checkpoint and config, with the `mutate` params perturbed (x1.2 / x0.8) or
    resampled. The weights carry over; the optimizer's moments start afresh."""

    name: Literal["pbt"] = "pbt"
    perturbation_interval: PositiveInt = 2
    """Epochs between exploit/explore steps (below max_epochs)."""
    mutate: Annotated[list[str], AfterValidator(_names)] = ["learning_rate"]
    """Params PBT changes: ones every trial has that leave the weights' shapes alone
    (learning_rate, momentum, rho, beta_1, beta_2, epsilon, weight_decay, l1, l2, dropout,
    input_dropout, clipvalue, clipnorm, global_clipnorm, batch_size)."""
    quantile_fraction: Probability = 0.25
    """The bottom (and top) share of the population."""
    resample_probability: Probability = 0.25
    """Chance that a mutated param is resampled from the space rather than perturbed."""


SCHEDULERS: tuple[type[Section], ...] = (Asha, Fifo, Hyperband, Median, Pbt)
Scheduler = Annotated[Asha | Fifo | Hyperband | Median | Pbt, Field(discriminator="name")]


# -- the options of the cluster and tracking groups -------------------------------------


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ConfigError(
            f"cluster.dashboard_host={value!r}: must be an IP address (127.0.0.1 = this "
            "machine only, 0.0.0.0 = every interface)"
        ) from None


class Cluster(Section):
    """Where the trials run: ``local`` starts Ray on this machine with exactly its CPUs
    (and GPUs); ``remote`` joins a running cluster (``ray up cluster.yaml``)."""

    name: Literal["local", "remote"] = "local"
    address: str | None = None
    """remote (default auto): auto = the cluster this machine belongs to (its `ray
    start` record), HOST:6379 (the head's GCS) or ray://HOST:10001."""
    dashboard: bool = False
    """Ray's dashboard (needs ray[default])."""
    dashboard_host: Annotated[str, AfterValidator(_ip)] = "127.0.0.1"
    """Where the dashboard listens: 127.0.0.1 = this machine only, 0.0.0.0 = the network."""
    gpu_wait_s: Positive = 600
    """With trial.gpus > 0 on a cluster: how long to wait for GPU workers to join (not
    counted in time_budget_s)."""

    @model_validator(mode="after")
    def _joinable(self) -> Cluster:
        if self.name == "remote" and not self.address:
            raise ConfigError(
                "cluster.address: cluster=remote needs auto, HOST:PORT or ray://HOST:PORT"
            )
        return self


class Tracking(Section):
    """MLflow tracking: an embedded SQLite file by default (nothing to start; artifacts
    in mlruns/ beside it)."""

    uri: Annotated[str, Field(min_length=1)] = "sqlite:///mlflow.db"
    """sqlite:///FILE.db, http://HOST:PORT (an `mlflow server`) or a folder."""
    registered_model: Annotated[
        str | None, AfterValidator(_checked_name("tracking.registered_model"))
    ] = None
    """Registered-model name for each sweep's model; null = the sweep's `name`
    (docs/results.md, "Model registry")."""
    system_metrics: bool = True
    """CPU, memory, disk, network (and GPU) of every node, every 5 s, on the parent run."""


# -- the root's sections ----------------------------------------------------------------


class Objective(Section):
    """What the sweep optimizes: the searcher, the scheduler, early stopping, checkpoints,
    the ensemble, the report and the registered model all follow it."""

    metric: str | None = None
    """A validation metric the task reports (val_loss, val_accuracy, val_auc, val_rmse,
    val_mae); null = the task's own (multiclass val_accuracy, binary and multilabel
    val_auc, regression val_rmse)."""
    mode: Literal["min", "max"] | None = None
    """null = the metric's own direction."""

    @model_validator(mode="after")
    def _val_metric(self) -> Objective:
        if self.metric is not None and not self.metric.startswith("val_"):
            raise ConfigError(
                f"objective.metric={self.metric!r}: must be a validation metric (val_loss, "
                "val_accuracy, val_auc, val_rmse, val_mae), or null for the task's own"
            )
        return self


class Pareto(Section):
    """With several objectives, the registered model: among the Pareto-optimal trials
    whose first objective is within `tolerance` of the best, the one best on the second
    objective (then the third...)."""

    tolerance: Annotated[float, Field(ge=0.0)] = 0.005
    """0 = the trial best on the first objective."""


class Study(Section):
    """The sweep's Optuna study (one per sweep, named like its Ray Tune folder; the
    parent run logs study.name and study.storage). Open it with
    `optuna-dashboard sqlite:///optuna.db`."""

    storage: str | None = None
    """An RDB URL (sqlite:///FILE.db, postgresql://..., mysql://...); null = optuna.db
    beside a sqlite tracking store (else in the launch folder)."""

    @model_validator(mode="after")
    def _rdb_url(self) -> Study:
        if self.storage is not None and "://" not in self.storage:
            raise ConfigError(
                f"study.storage={self.storage!r}: must be an RDB URL (sqlite:///FILE.db, "
                "postgresql://..., mysql://...) or null"
            )
        return self


def _whole_above_one(value: float) -> float:
    if 1 < value != int(value):
        raise ConfigError(f"trial.gpus={value!r}: above 1, GPUs per trial must be whole")
    return value


class Trial(Section):
    """What each trial gets."""

    cpus: PositiveInt = 1
    """CPUs reserved per trial; TensorFlow in the trial uses this many threads."""
    gpus: Annotated[float, Field(ge=0.0), AfterValidator(_whole_above_one)] = 0
    """GPUs per trial; fractions share a card (0.25 = four trials per GPU, each with a
    TensorFlow memory limit of a quarter of the card); whole above 1. Locally, only
    where TensorFlow sees a GPU (pip install '.[gpu]')."""
    steps_per_execution: PositiveInt = 32
    """Training steps Keras runs per call into TensorFlow (compile's steps_per_execution):
    more cuts the per-step cost that dominates small models (1.3-1.5x faster epochs for
    the default space on a CPU); the results are the same. A trial of fewer than 1000
    steps (batches per epoch x max_epochs) runs one per call: tracing the loop would cost
    it more than it saves. 1 = a call per step."""


class Checkpoint(Section):
    """Trial checkpoints: retries, scheduler resumes and ``resume=true`` continue from
    the latest one."""

    frequency: PositiveInt = 1
    """Every N epochs (and whenever the objective improves, and at the last epoch)."""
    num_to_keep: PositiveInt = 2
    """Kept per trial once the sweep has ended: the best N, plus the latest (while it
    runs every checkpoint is kept, so a resume after a kill finds the one Tune recorded)."""


class Fault(Section):
    """Failures: a lost node, a killed worker, an error."""

    max_failures: Count = 2
    """Times a trial is retried from its latest checkpoint; then it is recorded FAILED
    and the sweep goes on."""


class Evaluation(Section):
    """Extra scores of the registered model on the test set."""

    mc_dropout_samples: Count = 0
    """MC dropout (HOML ch. 11, "Monte Carlo (MC) Dropout"): also score it averaging this
    many stochastic passes (dropout on, batch norm in inference mode); 0 = off."""


class Ensemble(Section):
    """The registered model: 1 = the best trial's model; N > 1 = greedy ensemble
    selection (Caruana et al., 2004) on the validation set by the objective, up to N
    picks with replacement among the `candidates` best trials, registered as one
    averaged Keras model. Inference cost only; the test set never chooses. The parent
    run tags ensemble.members and logs best_trial_test_<objective> beside the
    ensemble's test metrics. Measured on Fashion-MNIST (10-minute search, 3 seeds), the
    best of checkpoint, refit and re-check (bench/README.md, "The final model")."""

    size: PositiveInt | None = None
    """null = 10, or 1 with several objectives (the Pareto rule picks one model) or an
    AUC objective (selection on a ranking score ignores calibration)."""
    candidates: PositiveInt = 10
    """The best trials the selection may pick from."""


class Recheck(Section):
    """After the search: train the best `top_k` configs again on `seeds` fresh seeds each
    (as trials: a trial's CPUs/GPU, max_concurrent at a time) and register the config
    with the best mean validation score: the search's winner is partly a lucky draw.
    Each re-check is a run nested under its trial's run (tag phase=recheck); the parent
    gets recheck/table.csv, recheck_mean_<objective>, recheck_std_<objective>, tag
    recheck.pick and optimism_gap (the winner's search score minus its re-check mean).
    With several objectives only the Pareto rule's choice is re-checked. With
    time_budget_s the search stops early enough to leave them their time."""

    top_k: Count = 0
    """Configs re-checked; 0 = off (measured no better on Fashion-MNIST, bench/README.md)."""
    seeds: PositiveInt = 2
    """Fresh seeds per re-checked config."""


class Final(Section):
    """How the registered model is trained."""

    refit: bool = False
    """Retrain the registered model (each ensemble member) on training + validation
    data for its best epoch count (median over its runs), on a fresh seed, as Keras
    Tuner's workflow refits its winner: a run nested under the trial (tag phase=refit,
    tag refit.epochs). The chosen trial's own checkpoint is still scored as
    best_trial_test_<metric>; a refit that fails leaves the un-refit model registered
    (tag refit.error). Off: on Fashion-MNIST it did not raise the test accuracy."""


class LrFind(Section):
    """The learning-rate finder (``sweep-lr-find``; HOML ch. 10, "Learning rate"): grow
    the rate exponentially from min_lr to max_lr over `iterations` batches, log loss vs
    rate, suggest 10x below the turning point."""

    min_lr: Positive = 1e-5
    """The first rate tried (> 0)."""
    max_lr: Positive = 10.0
    """The last rate tried (above min_lr)."""
    iterations: Annotated[int, Field(ge=20)] = 500
    """Batches the rate grows over."""
    params: dict[str, Any] = {}
    """The model to probe: the space's fixed params, these overrides, else defaults."""

    @model_validator(mode="after")
    def _ordered(self) -> LrFind:
        if self.min_lr >= self.max_lr:
            raise ConfigError(
                f"lr_find.min_lr={self.min_lr}: must be below lr_find.max_lr={self.max_lr}"
            )
        return self


def _batches(value: int | str) -> int | str:
    if isinstance(value, int) and value >= 0 or re.fullmatch(r"\d+,\d+", str(value)):
        return value
    raise ConfigError(
        f'tensorboard.profile_batch={value!r}: must be 0 (off), a batch number, or "START,END"'
    )


class Tensorboard(Section):
    """Per-trial TensorBoard logs: <log_dir>/<name>/trial-<id> (on a cluster, a folder
    every node shares). View: tensorboard --logdir <log_dir>/<name>"""

    enabled: bool = False
    """Off by default: they cost disk and a little time per epoch."""
    log_dir: Annotated[str, Field(min_length=1)] = "tensorboard"
    """The folder (or URI) the logs go to."""
    histogram_freq: Count = 0
    """Weight histograms every N epochs; 0 = none."""
    profile_batch: Annotated[int | str, AfterValidator(_batches)] = 0
    """Profiled batches, "START,END" or one batch number; 0 = none."""


class RayStorage(Section):
    """Ray Tune's results and checkpoints."""

    storage_path: str | None = None
    """A folder or URI; null = ./ray_results under the launch folder (s3://... or a
    shared folder on clusters)."""


class Transfer(Section):
    """Transfer learning (HOML 2e ch. 11, "Reusing Pretrained Layers"): every trial
    starts from a trained model's lower layers, the search space's transfer params
    (reuse_layers, freeze_layers, freeze_epochs, unfreeze_top, finetune_lr_factor,
    from_scratch) saying how much of it to keep and how to train it."""

    source: Annotated[str, Field(min_length=1)] | None = None
    """The model to reuse: models:/NAME/VERSION or models:/NAME@ALIAS (one dnn-sweep
    registered, in tracking.uri), a .keras file, or a folder holding one (an MLflow
    model dnn-sweep logged); null = off. Its input must match the data's."""
    cache: bool = True
    """While the reused bottom is frozen, compute its outputs on the training and
    validation data once per sweep (shared by trials and re-checks through Ray's object
    store) and train only the layers above them (in-memory data)."""
    pretrain: list[str] | None = None
    """How to make a models:/ source that is not registered yet: the overrides of a
    sweep that registers it (its `name`), run first, in this sweep's tracking.uri and
    ray.storage_path (the transfer presets use it); null = the source must exist."""


def sweep_name(cfg: Mapping[str, Any]) -> str:
    """The sweep's name: ``name`` when given, else the data's: the stem of
    ``dataset.path`` (``cancer`` for cancer.csv, the folder's name for images or Parquet
    parts), else the dataset option (``fashion_mnist``, ``digits``). Sweeps of other
    data then never share an experiment or a registered model by default (whose
    versions must all take the same inputs); sweeps of the same data do."""
    if cfg.get("name"):
        return str(cfg["name"])
    dataset = cfg.get("dataset") or {}
    path = str(dataset.get("path") or "").rstrip("/")
    name = PurePosixPath(path.split("://", 1)[-1]).stem or str(dataset.get("name") or "data")
    problem = name_problem(name)
    if problem:
        raise ConfigError(
            f"dataset.path={path}: its name {name!r} cannot name the sweep ({problem}); "
            "give one with name=NAME"
        )
    return name


_warm_start = _checked_name("warm_start")


TaskName = Literal["auto", "multiclass", "binary", "regression", "multilabel"]


class SweepConfig(Section):
    """A sweep's whole config. The groups (dataset, search_space, searcher, scheduler,
    cluster, tracking) come from their options; everything else has its default here."""

    name: Annotated[str | None, AfterValidator(_sweep_name)] = None
    """The sweep's name: the MLflow experiment, the registered model, the Ray run folder;
    null = the data's name (the stem of dataset.path, e.g. `cancer` for cancer.csv, else
    the dataset option, e.g. `fashion_mnist`). Up to 250 characters, none of `/ : ' "
    \\`, not starting with `.` (MLflow's rules, checked before anything runs)."""
    task: TaskName = "auto"
    """What to learn; auto = inferred from the target (and printed first). It sets the
    output layer, the loss and the metrics."""
    objective: Objective = Objective()
    objectives: list[str] | None = None
    """Multi-objective search: `objectives=[val_accuracy:max,n_params:min]` (two or more
    METRIC:MODE; a validation metric, or a cost of the model: n_params, latency_ms =
    inference time per example on the trial's worker). The first must be a validation
    metric and is the objective (scheduler, checkpoints, early stopping follow it). The
    sampler (nsga2, tpe = MO-TPE, random, qmc, gp; not cmaes, pbt) gets each trial's
    last-epoch values; the parent run gets pareto/front.csv, pareto/front.png and
    pareto_front_size. Not with ensemble.size > 1."""
    pareto: Pareto = Pareto()
    trials: PositiveInt = 1000
    """Trials to run, at most: with the default time_budget_s the budget ends the sweep
    first, after as many trials as fit, most of them pruned early by the scheduler (how
    many varies from run to run with the models the searcher draws)."""
    max_epochs: PositiveInt = 10
    """Epoch cap per trial (the scheduler's max_t)."""
    max_concurrent: PositiveInt | None = None
    """Trials running at once; null = one per trial.cpus CPUs of this machine (one CPU
    fewer when the data streams)."""
    seed: Count = 0
    """Seeds the searcher's sampler, the validation split (unless dataset.split_seed)
    and every trial's weight init."""
    time_budget_s: Positive | None = 600
    """Wall-clock budget in seconds, from the command's start (Ray start-up included;
    with -m, from each job's start): trials still running then are stopped, then the
    sweep's model (by default an ensemble, see ensemble.*) is chosen, evaluated and
    logged (re-checks and refits inside it). null = none:
    `trials` alone ends the sweep. 10 minutes measured better than a fixed 16 trials on
    Fashion-MNIST (bench/README.md, "The default sweep")."""
    resume: bool = False
    """`resume=true name=NAME`: continue the newest sweep of that name (its unfinished
    trials from their checkpoints; a finished one: print its summary); with a larger
    `trials` it adds trials to it, finished or not (same parent run, same study)."""
    warm_start: Annotated[str | None, AfterValidator(_warm_start)] = None
    """`warm_start=NAME`: copy the finished trials of sweep NAME's newest study into this
    sweep's study before it starts, so the sampler begins from what that sweep learned
    (same objective required; a param outside this space exits 2 naming it; the parent
    run logs warm_start.trials)."""
    study: Study = Study()
    trial: Trial = Trial()
    checkpoint: Checkpoint = Checkpoint()
    fault: Fault = Fault()
    evaluation: Evaluation = Evaluation()
    ensemble: Ensemble = Ensemble()
    recheck: Recheck = Recheck()
    final: Final = Final()
    lr_find: LrFind = LrFind()
    tensorboard: Tensorboard = Tensorboard()
    ray: RayStorage = RayStorage()
    transfer: Transfer = Transfer()
    dataset: dict[str, Any]
    """table, arrays, images (your data; their keys: docs/data.md, "Your own data"),
    fashion_mnist (55k train / 5k validation / 10k test; its path defaults to
    /usr/share/datasets/fashion-mnist/, then ~/.keras/datasets) or digits
    (scikit-learn's 8x8 digits)."""
    search_space: dict[str, Any]
    """mlp, keras_tuner and the others in docs/search-spaces.md, or one of yours (-cd
    DIR); its params are checked against the params registry (below)."""
    # The groups' default options (conf/config.yaml's defaults list names the same:
    # tests/test_schema.py), for a config given as a plain mapping.
    searcher: Searcher = Tpe()
    scheduler: Scheduler = Asha()
    cluster: Cluster = Cluster()
    tracking: Tracking = Tracking()

    @model_validator(mode="after")
    def _objectives_agree(self) -> SweepConfig:
        pairs = self.objective_pairs
        if pairs and self.objective.metric not in (None, pairs[0][0]):
            raise ConfigError(
                f"objective.metric={self.objective.metric}: objectives names "
                f"{pairs[0][0]} first; set one of them"
            )
        return self

    @property
    def sweep_name(self) -> str:
        """``name``, or the data's name when it is null (see ``sweep_name``)."""
        return sweep_name({"name": self.name, "dataset": dict(self.dataset)})

    @property
    def objective_pairs(self) -> tuple[tuple[str, str], ...]:
        """``objectives`` as (metric, mode) pairs; () for one objective.

        Raises:
            ConfigError: not two or more METRIC:MODE, or a cost first.
        """
        from trainables.costs import COSTS

        if self.objectives is None:
            return ()
        if len(self.objectives) < 2:
            raise ConfigError(
                f"objectives={self.objectives!r}: must be a list of two or more METRIC:MODE "
                "(e.g. [val_accuracy:max,n_params:min])"
            )
        pairs = tuple(_objective_pair(item, COSTS) for item in self.objectives)
        if pairs[0][0] in COSTS:
            raise ConfigError(
                f"objectives: {self.objectives[0]!r}: the first objective (the one the "
                "scheduler, checkpoints and early stopping follow) must be a validation metric"
            )
        return pairs


def _objective_pair(item: str, costs: tuple[str, ...]) -> tuple[str, str]:
    metric, _, mode = item.partition(":")
    if mode not in ("min", "max") or not (metric.startswith("val_") or metric in costs):
        raise ConfigError(
            f"objectives: {item!r}: must be METRIC:min or METRIC:max, METRIC a validation "
            f"metric (val_accuracy, val_loss, ...) or {', '.join(costs)}"
        )
    return metric, mode


GROUPS = ("dataset", "search_space", "searcher", "scheduler", "cluster", "tracking")
# The options of the groups whose every key is the schema's (the others are files).
OPTIONS: dict[str, dict[str, Section]] = {
    "searcher": {m.model_fields["name"].default: m() for m in SEARCHERS},
    "scheduler": {m.model_fields["name"].default: m() for m in SCHEDULERS},
    "cluster": {"local": Cluster(), "remote": Cluster(name="remote", address="auto")},
    "tracking": {"sqlite": Tracking()},
}
DEFAULTS_NAME = "dnn_sweep_defaults"  # the root keys' defaults, first in config.yaml


def register() -> None:
    """Put the schema's defaults in Hydra's ConfigStore: ``dnn_sweep_defaults`` (the
    root keys) and the options of the searcher, scheduler, cluster and tracking groups,
    so composition starts from the one set of defaults declared here."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    root = SweepConfig.model_fields
    store.store(
        name=DEFAULTS_NAME,
        node={k: _plain(f.default) for k, f in root.items() if k not in GROUPS},
    )
    for group, options in OPTIONS.items():
        for name, option in options.items():
            store.store(group=group, name=name, node=option.model_dump())


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


# The discriminated unions (by `name`): their errors' loc holds the tag.
_TAGGED = {"searcher": SEARCHERS, "scheduler": SCHEDULERS}


def validate(data: Any, model: Any = SweepConfig, prefix: str = "") -> Any:
    """``data`` checked against ``model`` (a model, or a type such as ``Searcher``).

    Raises:
        ConfigError: the first problem, one line naming the full key (``prefix`` + the
            path inside ``model``) and what is allowed.
    """
    try:
        return _adapter(model).validate_python(data)
    except ValidationError as exc:
        raise _one_line(exc.errors()[0], prefix, model) from None


@cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def _key(loc: tuple[Any, ...], prefix: str) -> str:
    full = (prefix, *loc) if prefix else loc
    parts = [str(p) for i, p in enumerate(full) if not (i and str(full[i - 1]) in _TAGGED)]
    return ".".join(parts)  # a union's tag (the searcher's name) is not a key


_KIND = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
}
_OPERATOR = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


def _one_line(error: Any, prefix: str, model: type[BaseModel]) -> ConfigError:
    """pydantic's error as "KEY=VALUE: must be ..." (our ConfigErrors pass through)."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if isinstance(ctx.get("error"), ConfigError):
        return ctx["error"]
    key = _key(error["loc"], prefix)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        allowed = ", ".join(m.model_fields["name"].default for m in _TAGGED[key.split(".")[-1]])
        return ConfigError(f"{key}.name={ctx.get('tag')!r}: allowed are {allowed}")
    if kind == "extra_forbidden":
        return ConfigError(f"{key}: unknown config key{_close(error['loc'], prefix, model)}")
    if kind == "missing":
        return ConfigError(f"{key}: missing (see `sweep --cfg job`)")
    if kind in _OPERATOR:
        bound = next(iter(ctx.values()))
        noun = "an integer" if type(bound) is int else "a number"
        why = f"must be {noun} {_OPERATOR[kind]} {bound:g}"
    elif kind == "literal_error":
        why = "allowed are " + ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected"))))
    else:
        why = f"must be {_KIND.get(kind, error['msg'].removeprefix('Input should be '))}"
    return ConfigError(f"{key}={value!r}: {why}")


def _close(loc: tuple[Any, ...], prefix: str, model: type[BaseModel]) -> str:
    """ "; did you mean trials?" from the section's declared keys."""
    section: Any = model
    for part in loc[:-1]:
        field = getattr(section, "model_fields", {}).get(part)
        section = getattr(field, "annotation", None)
    names = list(getattr(section, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    where = _key(loc[:-1], prefix)
    return f"; did you mean {where + '.' if where else ''}{close[0]}?" if close else ""


# -- the reference table (docs/reference.md, "Configuration") ----------------------------

TABLE = "config-table"  # its section of docs/reference.md (dnn_sweep.generated)
_NOUNS = {
    "integer": "integer",
    "number": "number",
    "boolean": "`true`, `false`",
    "string": "string",
    "object": "mapping",
    "array": "list",
    "null": "`null`",
}
_BOUNDS = (
    ("exclusiveMinimum", ">"),
    ("minimum", ">="),
    ("exclusiveMaximum", "<"),
    ("maximum", "<="),
)


def docs_table() -> str:
    """Every config key: what it takes, its default and what it means, from the models'
    JSON schema (pydantic's public description of them)."""
    schema = SweepConfig.model_json_schema()
    rows = ["| key | takes | default | meaning |", "|---|---|---|---|"]
    rows += _rows(schema, schema, "", _group_defaults())
    return "\n".join(rows)


def _rows(node: dict[str, Any], schema: dict[str, Any], prefix: str, groups: dict) -> list[str]:
    rows = []
    for key, prop in node["properties"].items():
        full = f"{prefix}{key}"
        target = _deref(prop, schema)
        if "oneOf" in prop:  # searcher / scheduler: one row per option, then its keys
            for ref in prop["oneOf"]:
                option = _deref(ref, schema)
                name = option["properties"]["name"]["default"]
                rows.append(
                    f"| `{full}={name}` | option | {_mark(groups, key, name)} | {_text(option)} |"
                )
                sub = {k: v for k, v in option["properties"].items() if k != "name"}
                rows += _rows({"properties": sub}, schema, f"{full}.", groups)
        elif "properties" in target and key not in GROUPS:
            if target.get("description"):
                rows.append(f"| `{full}.*` | section | | {_text(target)} |")
            rows += _rows(target, schema, f"{full}.", groups)
        elif key in GROUPS and "properties" in target:  # cluster, tracking
            rows.append(f"| `{full}` | option | `{groups.get(key)}` | {_text(target)} |")
            rows += _rows(target, schema, f"{full}.", groups)
        else:
            default = f"`{groups[key]}`" if key in groups else _default(prop)
            rows.append(f"| `{full}` | {_takes(prop)} | {default} | {_text(prop)} |")
    return rows


def _deref(prop: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    return schema["$defs"][ref.rsplit("/", 1)[1]] if ref else prop


def _takes(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " or ".join(_takes(p) for p in prop["anyOf"])
    if "enum" in prop or "const" in prop:
        return ", ".join(f"`{v}`" for v in prop.get("enum", [prop.get("const")]))
    bounds = [f"{op} {prop[k]:g}" for k, op in _BOUNDS if k in prop]
    if len(bounds) == 2:
        bounds = [" and ".join(bounds)]
    if "minLength" in prop:
        bounds.append("non-empty")
    return " ".join([_NOUNS.get(prop.get("type", ""), "any"), *bounds]).strip()


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return ""
    value = prop["default"]
    if isinstance(value, list):
        return f"`[{', '.join(map(str, value))}]`"
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
    return f"`{text}`"


def _text(prop: dict[str, Any]) -> str:
    text = " ".join(str(prop.get("description", "")).split()).replace("``", "`")
    return text.replace("<", "&lt;")


def _group_defaults() -> dict[str, str]:
    """Each group's default option, as conf/config.yaml's defaults list names it."""
    import yaml

    from search.config import conf_dir

    with open(f"{conf_dir()}/config.yaml") as f:
        entries = yaml.safe_load(f)["defaults"]
    return {k: v for e in entries if isinstance(e, dict) for k, v in e.items() if k in GROUPS}


def _mark(groups: dict[str, str], group: str, name: str) -> str:
    return "(default)" if groups.get(group) == name else ""


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--write"]:  # python -m search.schema --write
        from dnn_sweep.generated import write_section

        write_section(TABLE, docs_table())
    else:
        print(docs_table())
