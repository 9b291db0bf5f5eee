"""Starting or joining Ray: the `cluster` config group."""

from __future__ import annotations

import os
import socket

from search.errors import ConfigError
from search.settings import Settings


def _env_defaults() -> None:
    """Settings Ray reads from the environment; workers started here inherit them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # Tune's newer console output prints its config box and a results banner even at
    # verbose=0; the sweep shows its own progress (also for the Python API).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune warns each time a per-epoch checkpoint forces a state snapshot: by design here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # A reused worker waits this long for the previous trial's thread to exit; Ray's 2 s
    # default is too short on a loaded machine, and a failed reuse fails the next trial.
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "60")
    # Snapshot Tune's experiment state every 2 s (Ray's "auto" waits >= 10 s): a driver
    # killed between snapshots makes a resumed sweep forget the trials started since.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    # Tune's default per-result CSV/JSON/TensorBoard writers: MLflow records every result
    # already, and the driver shares the trials' cores (profiled: the TensorBoard writer's
    # thread alone took ~14% of its samples). The driver adds back the JSON one, which
    # Tune's own result tables (best trial, resume) read.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, before any work, when a HOST:PORT cluster address is unreachable
    (``ray.init`` would retry for a minute)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"cluster.address={address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cluster.address={address}: no Ray cluster answers there ({exc}); start one "
            "(ray up cluster.yaml / ray start --head) or use cluster=local"
        ) from exc


def check_local_gpus(gpus_per_trial: float) -> None:
    """A local sweep asking for GPUs this machine's TensorFlow cannot see would wait
    forever for resources (Tune only warns, after a minute): refuse it now.

    Raises:
        ConfigError: naming ``trial.gpus`` and what is there.
    """
    from trainables.devices import visible_gpus

    seen = visible_gpus()
    if seen == 0:
        raise ConfigError(
            f"trial.gpus={gpus_per_trial:g}: TensorFlow sees no GPU on this machine (no "
            "CUDA device, or a CPU-only TensorFlow); use trial.gpus=0, install '.[gpu]' "
            "where a GPU is, or cluster=remote"
        )
    if gpus_per_trial > seen:
        raise ConfigError(
            f"trial.gpus={gpus_per_trial:g}: this machine has {seen} GPU(s) TensorFlow sees"
        )


def start_ray(settings: Settings) -> bool:
    """Local: Ray with exactly this machine's CPUs (GPUs detected), its services bound to
    127.0.0.1 (nothing reachable from the network), the dashboard off or on
    ``cluster.dashboard_host`` (127.0.0.1 unless the user opts in). Remote: join
    ``cluster.address``. A Ray this process already runs (a notebook's, a test
    session's) is used as it is. Returns whether Ray was started here (then the caller
    shuts it down)."""
    import ray

    _env_defaults()
    if ray.is_initialized():
        return False
    common = {"log_to_driver": False, "configure_logging": True, "logging_level": "ERROR"}
    if settings.cluster_address is None:
        ray.init(
            # "local": always a fresh Ray of our own, never a `ray start` cluster that
            # happens to run on this machine (ray.init would try to join it).
            address="local",
            num_cpus=os.cpu_count() or 1,
            include_dashboard=settings.dashboard,
            dashboard_host=settings.dashboard_host,
            _node_ip_address="127.0.0.1",
            **common,
        )
        return True
    check_address(settings.cluster_address)
    try:
        ray.init(address=settings.cluster_address, **common)
    except (ConnectionError, RuntimeError) as exc:
        raise ConfigError(
            f"cluster.address={settings.cluster_address}: cannot join ({str(exc)[:200]})"
        ) from exc
    return True
