"""Starting or joining Ray: the `cluster` config group."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dnn_sweep.errors import ConfigError
from search.quiet import note
from search.settings import Settings

# Seconds a joining driver retries the head's GCS (Ray's default, 20, doubles the wait of
# a refused token); the socket is already known to answer when it is used.
JOIN_RETRIES_S = "8"
PROGRESS_EVERY_S = 15.0
TOKEN_HINT = (
    "copy the head's ~/.ray/auth_token to this machine, or export "
    "RAY_AUTH_TOKEN=<the output of `ray get-auth-token` on the head>"
)


def _env_defaults() -> None:
    """Settings Ray reads from the environment; workers started here inherit them (and
    those of search.quiet.quiet_libraries, TensorFlow's log level included)."""
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


def loopback_only(local: bool) -> bool:
    """Before Ray is imported: a local sweep's Ray listens on 127.0.0.1 only, whatever
    extras are installed (``ray[default]``'s agents too). Ray swaps a node address of
    127.0.0.1 for the machine's own, and its gRPC servers then listen on every interface,
    unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is off, which Ray reads once, at import
    (it also keeps this process from adding nodes to a cluster: local sweeps only).
    Returns whether it could be set (False: Ray was imported already, e.g. a notebook's)."""
    if not local or "ray" in sys.modules:
        return False
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        import ray  # noqa: F401 - Ray reads the switch now, once
    finally:  # not inherited: a `ray start` this process runs later may add nodes
        del os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"]
    return True


def before_ray(settings: Any) -> str | None:
    """What must happen before Ray is imported, for the cluster this run joins (None: a
    local Ray of its own; a resume joins its stored sweep's): loopback for a local run.
    Returns that cluster's address (the CLI then turns token auth on for it)."""
    from search.sweep_state import cluster_of

    s = settings
    joined = cluster_of(s.resume, s.storage_path, s.name, s.cluster_address)
    loopback_only(joined is None)
    return joined


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, before any work, when a cluster address is unreachable
    (``ray.init`` would retry for minutes). ``auto`` is probed where ``ray.init`` would
    look first (``RAY_ADDRESS``, then the cluster ``ray start`` recorded on this
    machine); with neither there is nothing to join."""
    hostport = (
        (os.environ.get("RAY_ADDRESS") or recorded_cluster()) if address == "auto" else address
    )
    if not hostport:
        raise ConfigError(
            "cluster.address=auto: no Ray cluster to join (RAY_ADDRESS is not set and "
            "`ray start` recorded none on this machine); start one (ray up cluster.yaml / "
            "ray start --head), give its HOST:PORT, or use cluster=local"
        )
    hostport = hostport.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"cluster.address={address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        where = f" ({hostport}: RAY_ADDRESS, or the cluster ray start recorded)" * (
            address == "auto"
        )
        raise ConfigError(
            f"cluster.address={address}: no Ray cluster answers there{where} ({exc}); start "
            "one (ray up cluster.yaml / ray start --head) or use cluster=local"
        ) from exc


def recorded_cluster() -> str | None:
    """HOST:PORT of the cluster ``ray start`` last recorded on this machine, as
    ``ray.init(address="auto")`` reads it (``ray_current_cluster`` in Ray's temp folder:
    ``RAY_TMPDIR``, else ``TMPDIR``, else /tmp, then ``ray/``), or None. Ray's file
    layout, not an API: listed and guarded in tests/test_private_apis.py."""
    temp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    try:
        text = (Path(temp) / "ray" / "ray_current_cluster").read_text().strip()
    except OSError:
        return None
    return text or None


def check_local_gpus(gpus_per_trial: float) -> None:
    """A local sweep asking for GPUs this machine's TensorFlow cannot see would wait
    forever for resources (Tune only warns, after a minute): refuse it now.

    Raises:
        ConfigError: naming ``trial.gpus`` and what is there.
    """
    from trainables.devices import visible_gpus

    # TensorFlow's first import probes CUDA and logs each failed step (cuInit ...) to fd 2:
    # with no GPU, the one line below says it all; with GPUs, its lines are passed on.
    with tempfile.TemporaryFile("w+") as log:
        with _stderr_to(log):
            seen = visible_gpus()
        if seen:
            log.seek(0)
            sys.stderr.write(log.read())
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
    # log_to_driver=False: the workers' output (TensorFlow's C++ lines at each worker's
    # import, Keras) stays in Ray's session logs, which the sweep's log names
    common = {"log_to_driver": False, "configure_logging": True, "logging_level": "ERROR"}
    if settings.cluster_address is None:
        context = ray.init(
            # "local": always a fresh Ray of our own, never a `ray start` cluster that
            # happens to run on this machine (ray.init would try to join it).
            address="local",
            num_cpus=os.cpu_count() or 1,
            include_dashboard=settings.dashboard,
            dashboard_host=settings.dashboard_host,
            _node_ip_address="127.0.0.1",
            **common,
        )
    else:
        check_address(settings.cluster_address)
        use_cluster_token()
        context = _join(settings.cluster_address, common)
    # a RayContext names the session; a Ray Client's (ray://) has no address_info
    session = getattr(context, "address_info", {}).get("session_dir")
    where = f"{session}/logs" if session else "the cluster's session folders (ray://)"
    note(f"Ray's session logs (each trial's worker, its TensorFlow lines too): {where}")
    return True


def use_cluster_token() -> None:
    """Ray turns token auth on by itself only for ``address=auto``; with HOST:PORT a
    driver holding the token would still knock without it. Do what ``auto`` does, through
    Ray's documented variables: ``RAY_AUTH_MODE=token`` whenever a token is there
    (``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` names, or ``~/.ray/auth_token``)
    and ``RAY_AUTH_MODE`` is unset (an explicit mode, e.g. ``disabled``, is kept).

    Ray reads ``RAY_AUTH_MODE`` once, when it is imported: the CLI calls this before
    importing Ray; from Python, ``RAY_AUTH_MODE=token`` must be set before ``import ray``
    (the refusal says so)."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    named = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if named and not os.path.isfile(named):
        raise ConfigError(
            f"cluster=remote: RAY_AUTH_TOKEN_PATH={named} names no readable file; {TOKEN_HINT}"
        )
    token_file = named or os.path.expanduser("~/.ray/auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(token_file):
        os.environ["RAY_AUTH_MODE"] = "token"


def _join(address: str, common: dict[str, object]) -> Any:
    """ray.init on a cluster (its RayContext); Ray's retry warnings (C++, one a second)
    are kept out of the terminal and a refusal becomes one line saying what to set."""
    import ray

    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", JOIN_RETRIES_S)
    with tempfile.TemporaryFile("w+") as log:
        try:
            with _stderr_to(log):
                context = ray.init(address=address, **common)
        except (ConnectionError, RuntimeError) as exc:
            raise ConfigError(_join_error(address, exc)) from exc
        log.seek(0)
        sys.stderr.write(log.read())
    return context


@contextlib.contextmanager
def _stderr_to(file: object) -> Iterator[None]:
    """File descriptor 2 (where Ray's C++ core writes) redirected to ``file``."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _join_error(address: str, exc: BaseException) -> str:
    causes = f"{exc} {exc.__cause__} {exc.__context__}"
    if "auth_token" in causes or "AuthenticationError" in causes:
        mode = os.environ.get("RAY_AUTH_MODE", "unset")
        return (
            f"cluster.address={address}: the cluster refused this machine's Ray auth token "
            f"(RAY_AUTH_MODE={mode}; from Python, set it before importing ray): {TOKEN_HINT}"
        )
    if "Could not find any running Ray instance" in causes:
        return (
            f"cluster.address={address}: no Ray cluster on this machine (none recorded by "
            "`ray start`, RAY_ADDRESS unset); give HOST:PORT, start one (ray start --head), "
            "or use cluster=local"
        )
    return f"cluster.address={address}: cannot join ({str(exc)[:200]})"


def wait_for_gpus(settings: Settings, say: Callable[[str], None]) -> float:
    """On a cluster, trials asking for GPUs wait until GPU workers have joined (an
    autoscaler needs minutes to start one), with a line every ``PROGRESS_EVERY_S``; none
    within ``cluster.gpu_wait_s`` ends the sweep before any record. The demand is told
    to the autoscaler (``request_resources``), which starts no GPU node otherwise while
    no trial is pending. Returns the seconds waited (not counted in time_budget_s)."""
    import ray
    from ray.autoscaler.sdk import request_resources

    need, started = settings.gpus_per_trial, time.monotonic()
    if ray.cluster_resources().get("GPU", 0) >= need:
        return 0.0
    bundle = {"GPU": need, "CPU": settings.cpus_per_trial}
    request_resources(bundles=[bundle] * settings.max_concurrent)
    try:
        _poll_gpus(settings, say, started)
    finally:
        request_resources(bundles=[])  # from here on, pending trials are the demand
    return time.monotonic() - started


def _poll_gpus(settings: Settings, say: Callable[[str], None], started: float) -> None:
    import ray

    need, last = settings.gpus_per_trial, -PROGRESS_EVERY_S
    while (have := ray.cluster_resources().get("GPU", 0)) < need:
        waited = time.monotonic() - started
        if waited >= settings.gpu_wait_s:
            raise ConfigError(
                f"cluster.gpu_wait_s={settings.gpu_wait_s:g}: no GPU worker joined in time "
                f"(trial.gpus={need:g}, the cluster has {have:g} GPU); check the "
                "autoscaler (ray monitor cluster.yaml) or raise cluster.gpu_wait_s"
            )
        if waited - last >= PROGRESS_EVERY_S:
            say(
                f"Waiting for GPU workers to join: {have:g} of {need:g} GPU so far "
                f"({waited:.0f} s of cluster.gpu_wait_s={settings.gpu_wait_s:g})"
            )
            last = waited
        time.sleep(1.0)
    say(f"GPU workers joined: {have:g} GPU after {time.monotonic() - started:.0f} s")
