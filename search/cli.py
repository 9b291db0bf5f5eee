"""`sweep`, `sweep-lr-find` and `sweep-report`: thin command lines over the Python API.

Hydra composes the config (packaged ``conf/`` plus ``-cd``/``--config-dir``/
``hydra.searchpath``; ``-m`` runs one sweep per combination). The whole command line is
composed once first, so bad input (an unknown option or key, a bad value, a missing data
file, an unreachable tracking backend) ends with exit status 2 and one line naming it,
never a traceback; a sweep that ran but kept nothing exits 1.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import hydra
from omegaconf import DictConfig

from dnn_sweep.errors import (
    ConfigError,
    NoResultError,
    SweepError,
    TrackingError,
    UserError,
    reason,
)
from search.config import check_command_line, conf_dir, hydra_user_searchpath, to_plain

USER_ERRORS = (UserError,)
# Multirun jobs that failed, as "overrides: message" (the command exits 1 if any did).
_FAILED: list[str] = []
# Sweeps this process has started: the first one's time budget counts from the process'
# start (imports and Ray start-up included, as a user reads "10 minutes").
_STARTED: list[float] = []


def _guarded(run: Callable[[], None], prog: str = "sweep", job: str | None = None) -> None:
    """Run ``run``; bad input exits 2 (nothing ran), a sweep that kept nothing or whose
    final phase failed exits 1, each with one line. In a multirun (``job`` names its
    overrides) the failure is recorded instead, and the other jobs go on."""
    from search.quiet import quiet_libraries
    from tracking.secrets import install_log_filter

    quiet_libraries()  # sweep-report's too; a sweep's own output: search/quiet.py
    install_log_filter()
    try:
        run()
    except (*USER_ERRORS, NoResultError, SweepError) as exc:
        where = f" [{job}]" if job is not None else ""
        print(f"{prog}: error{where}: {exc}", file=sys.stderr)  # stderr masks secrets
        if job is not None:
            _FAILED.append(f"{job}: {exc}")
            return
        sys.exit(2 if isinstance(exc, UserError) else 1)


def _job() -> str | None:
    """This job's overrides in a multirun, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    config = HydraConfig.get()
    if config.mode != RunMode.MULTIRUN:
        return None
    # as typed: Hydra's escapes (`http\://`) would hide a URI's password from masking
    return " ".join(o.replace("\\", "") for o in config.overrides.task) or f"job {config.job.num}"


def _mask_multirun_file() -> None:
    """A multirun's Hydra saved the whole config (its overrides: a password in a URI
    too) as ``multirun.yaml`` in the multirun's folder before its first job; each job
    rewrites it masked (tracking/secrets.py), as it is the first thing a job does."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from tracking.secrets import mask

    config = HydraConfig.get()
    path = Path(config.sweep.dir) / "multirun.yaml"
    if config.mode != RunMode.MULTIRUN or not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    masked = mask(text)
    if masked != text:
        path.write_text(masked, encoding="utf-8")


def _overrides() -> list[str]:
    """The overrides this job was given on the command line."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def _started_at() -> float:
    """Where this sweep's ``time_budget_s`` counts from."""
    import psutil

    now = time.time()
    start = psutil.Process().create_time() if not _STARTED else now
    _STARTED.append(now)
    return start


@hydra.main(version_base=None, config_path=conf_dir(), config_name="config")
def _sweep(cfg: DictConfig) -> None:
    _mask_multirun_file()

    def run() -> None:
        from search.ray_runtime import before_ray, use_cluster_token
        from search.settings import load_settings

        s = replace(load_settings(to_plain(cfg)), searchpath=hydra_user_searchpath())
        if before_ray(s) is not None:
            use_cluster_token()  # also before Ray is imported: Ray reads RAY_AUTH_MODE once
        from search.driver import run_sweep
        from search.summary import format_summary

        summary = run_sweep(s, started_at=_started_at(), overrides=_overrides())
        print(format_summary(summary))  # stdout masks secrets

    _guarded(run, job=_job())


@hydra.main(version_base=None, config_path=conf_dir(), config_name="config")
def _lr_find(cfg: DictConfig) -> None:
    def run() -> None:
        from search.lr_find import run_lr_find
        from search.settings import load_settings

        s = run_lr_find(load_settings(to_plain(cfg), need_suggestion=False))
        print(
            f"lr finder: loss turns up at lr {s.turning_lr:.3g}; suggested lr "
            f"{s.suggested_lr:.3g} ({s.steps} steps)\n"
            f"MLflow: experiment id {s.experiment_id}, run {s.run_id} (lr_finder.png); "
            "a space takes its range from it with learning_rate: {lr_find: {low: 0.1, high: 3}}"
        )

    _guarded(run, prog="sweep-lr-find", job=_job())


def report_main(argv: list[str] | None = None) -> None:
    """`sweep-report NAME`: the leaderboard of a finished (or running) sweep, from MLflow."""
    import argparse

    from search.schema import Tracking
    from search.settings import _absolute_sqlite

    default_uri = Tracking().uri
    parser = argparse.ArgumentParser(
        prog="sweep-report",
        description="Print the leaderboard of sweep NAME (its newest run) from MLflow.",
    )
    parser.add_argument("name", help="the sweep's name (its MLflow experiment)")
    parser.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    parser.add_argument(
        "--tracking-uri", default=default_uri, help=f"MLflow tracking URI (default {default_uri})"
    )
    parser.add_argument("--csv", type=Path, help="also write every trial to this CSV file")
    args = parser.parse_args(argv)

    def run() -> None:
        from search.report import format_leaderboard, write_leaderboard
        from tracking.health import check_reachable, sqlite_missing
        from tracking.runs import leaderboard, load_sweep

        if args.top < 1:
            raise ConfigError(f"--top={args.top}: must be >= 1")
        if args.csv and not args.csv.parent.is_dir():  # before reading the sweep
            raise ConfigError(f"--csv={args.csv}: no such folder {args.csv.parent}")
        uri = _absolute_sqlite(args.tracking_uri)
        if sqlite_missing(uri):
            raise TrackingError(
                f"tracking.uri={args.tracking_uri}: no such SQLite file (run `sweep` there "
                "first, or pass --tracking-uri)"
            )
        check_reachable(uri)
        sweep = load_sweep(uri, args.name)
        print(format_leaderboard(sweep, args.name, args.top))
        if args.csv:
            try:
                write_leaderboard(leaderboard(sweep.trials), args.csv)
            except OSError as exc:  # a folder by that name, no permission, a full disk
                raise ConfigError(f"--csv={args.csv}: cannot write it ({reason(exc)})") from exc
            print(f"all {len(sweep.trials)} trials written to {args.csv}")

    _guarded(run, prog="sweep-report")


def _main(app: Callable[[], None], prog: str) -> None:
    argv = sys.argv[1:]
    _guarded(lambda: check_command_line(argv), prog=prog)
    app()
    if _FAILED:
        print(
            f"{prog}: {len(_FAILED)} multirun job(s) failed: " + "; ".join(_FAILED),
            file=sys.stderr,
        )
        sys.exit(1)


def main() -> None:
    """`sweep` console script."""
    _main(_sweep, "sweep")


def lr_find_main() -> None:
    """`sweep-lr-find` console script."""
    _main(_lr_find, "sweep-lr-find")


if __name__ == "__main__":
    main()
