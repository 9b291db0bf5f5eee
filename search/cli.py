"""`sweep`: the Hydra command line. Compose the config, validate it, run the sweep.

Bad input (config, data files, tracking backend) ends with exit status 2 and one line
naming the offending key or file, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from search.errors import ConfigError
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
    for name in ("alembic", "mlflow", "ray", "ray.tune", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)


@hydra.main(version_base=None, config_path=conf_dir(), config_name="config")
def _app(cfg: DictConfig) -> None:
    from search.driver import format_summary, run_sweep
    from search.settings import Settings

    _quiet_libraries()
    try:
        settings = Settings.from_config(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
        summary = run_sweep(settings)
    except USER_ERRORS as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(format_summary(summary))


def main() -> None:
    """Console-script entry point."""
    _app()


if __name__ == "__main__":
    main()
