"""`sweep` and `sweep-lr-find`: Hydra command lines over the same configs.

Compose the config, validate it, run. Bad input (config, data files, tracking backend)
ends with exit status 2 and one line naming the offending key or file, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from search.errors import ConfigError, NoResultError
from tracking.recorder import TrackingError
from trainables.data import DataError

USER_ERRORS = (ConfigError, DataError, TrackingError)


def conf_dir() -> str:
    """Where the configs are: inside the installed package (search/conf, see
    pyproject.toml), or the checkout's top-level conf/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"dnn-sweep configs not found next to {here}")


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # MLflow prints two "View run ... at URL" lines per run it closes (URL = the tracking
    # URI, credentials included); the sweep prints its own summary with the UI link.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name in ("alembic", "mlflow", "ray", "ray.tune", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # warns for every trial stopped before its first epoch (no result file): the sweep
    # reports those trials itself (MLflow, and the one-line error when none has a result)
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


def load_settings(cfg: DictConfig, need_suggestion: bool = True) -> Any:
    """Validated settings; looks the lr finder's suggestion up in MLflow when the space
    takes its learning-rate range from it."""
    from search.settings import Settings, _absolute_sqlite
    from search.space import SearchSpace
    from tracking.health import check_reachable
    from tracking.recorder import latest_lr_suggestion

    raw = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(raw, dict)
    suggestion = None
    if SearchSpace.needs_lr_suggestion(raw.get("search_space")):
        if need_suggestion:
            uri = _absolute_sqlite(str((raw.get("tracking") or {}).get("uri")))
            check_reachable(uri)
            suggestion = latest_lr_suggestion(uri, str(raw.get("name")))
        else:
            suggestion = 1.0  # the finder itself does not use the range
    return Settings.from_config(raw, lr_suggestion=suggestion)


def _guarded(run: Callable[[], None], prog: str = "sweep") -> None:
    from tracking.secrets import install_log_filter

    _quiet_libraries()
    install_log_filter()
    try:
        run()
    except (*USER_ERRORS, NoResultError) as exc:
        # bad input: 2 (nothing ran); a sweep that ran but kept nothing: 1
        print(f"{prog}: error: {exc}", file=sys.stderr)  # stderr masks (install_log_filter)
        sys.exit(1 if isinstance(exc, NoResultError) else 2)


@hydra.main(version_base=None, config_path=conf_dir(), config_name="config")
def _sweep(cfg: DictConfig) -> None:
    def run() -> None:
        from search.driver import format_summary, run_sweep

        print(format_summary(run_sweep(load_settings(cfg))))  # stdout masks secrets

    _guarded(run)


@hydra.main(version_base=None, config_path=conf_dir(), config_name="config")
def _lr_find(cfg: DictConfig) -> None:
    def run() -> None:
        from search.lr_find import run_lr_find

        s = run_lr_find(load_settings(cfg, need_suggestion=False))
        print(
            f"lr finder: loss turns up at lr {s.turning_lr:.3g}; suggested lr "
            f"{s.suggested_lr:.3g} ({s.steps} steps)\n"
            f"MLflow: experiment id {s.experiment_id}, run {s.run_id} (lr_finder.png); "
            "a space takes its range from it with learning_rate: {lr_find: {low: 0.1, high: 3}}"
        )

    _guarded(run)


def check_group_choices(argv: list[str]) -> None:
    """`group=option` overrides name a file of conf/<group>/: refuse an unknown one with
    exit 2 and one line (Hydra's own message is several lines and exits 1)."""
    conf = Path(conf_dir())
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if "." in key or "/" in key or not key or not (conf / key).is_dir():
            continue
        if not (conf / key / f"{value}.yaml").is_file():
            allowed = ", ".join(sorted(p.stem for p in (conf / key).glob("*.yaml")))
            print(
                f"sweep: error: {key}={value}: unknown option; allowed are {allowed}",
                file=sys.stderr,
            )
            sys.exit(2)


def report_main(argv: list[str] | None = None) -> None:
    """`sweep-report NAME`: the leaderboard of a finished (or running) sweep, from MLflow."""
    import argparse

    from search.settings import _absolute_sqlite

    default_uri = str(OmegaConf.load(Path(conf_dir()) / "tracking" / "sqlite.yaml").uri)
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
        from tracking.health import check_reachable
        from tracking.runs import leaderboard, load_sweep

        if args.top < 1:
            raise ConfigError(f"--top={args.top}: must be >= 1")
        uri = _absolute_sqlite(args.tracking_uri)
        if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():
            raise TrackingError(
                f"tracking.uri={args.tracking_uri}: no such SQLite file (run `sweep` there "
                "first, or pass --tracking-uri)"
            )
        check_reachable(uri)
        sweep = load_sweep(uri, args.name)
        print(format_leaderboard(sweep, args.name, args.top))
        if args.csv:
            write_leaderboard(leaderboard(sweep.trials), args.csv)
            print(f"all {len(sweep.trials)} trials written to {args.csv}")

    _guarded(run, prog="sweep-report")


def main() -> None:
    """`sweep` console script."""
    check_group_choices(sys.argv[1:])
    _sweep()


def lr_find_main() -> None:
    """`sweep-lr-find` console script."""
    check_group_choices(sys.argv[1:])
    _lr_find()


if __name__ == "__main__":
    main()
