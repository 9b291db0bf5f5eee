"""``transfer.pretrain``: a transfer sweep whose source is not registered yet trains and
registers it first, with a sweep of its own (the transfer presets are one command). It
composes with the user's config folders too, so it can name their datasets and spaces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dnn_sweep.errors import ConfigError
from tracking.registry import CHAMPION, LATEST, find_version, parse_model_uri


def ensure_source(settings: Any, run: Callable[..., Any], say: Callable[[str], None]) -> bool:
    """Run the ``transfer.pretrain`` sweep when ``transfer.source`` names a registered
    model that is not there yet; whether it ran. ``run`` is the driver's ``run_sweep``.

    Raises:
        ConfigError: the pretrain sweep would not register what the source names
            (before it runs), or ran but registered nothing the source names.
    """
    source, overrides = settings.transfer_source, settings.transfer_pretrain
    if not overrides or not source or not source.startswith("models:/"):
        return False
    if find_version(source, settings.tracking_uri) is not None:
        return False
    pretrain = _pretrain_settings(settings)
    _check_registers(source, pretrain.registered_model)
    say(
        f"transfer.source={source}: not registered yet; training it first: sweep "
        + " ".join(overrides)
    )
    run(pretrain, echo=say)
    if find_version(source, settings.tracking_uri) is None:
        raise ConfigError(
            f"transfer.pretrain: its sweep registered no model that transfer.source={source} "
            "names (give it the same name)"
        )
    return True


def _pretrain_settings(settings: Any) -> Any:
    """The ``transfer.pretrain`` sweep's settings, in this sweep's tracking store and
    storage path (checked like any sweep's: a bad override fails here)."""
    from search.config import compose, searchpath_line, to_plain
    from search.settings import load_settings

    where = [f"tracking.uri={settings.tracking_uri}", f"ray.storage_path={settings.storage_path}"]
    overrides = [*settings.transfer_pretrain, *where]
    composed = compose(overrides, searchpath_line(settings.searchpath))
    return replace(load_settings(to_plain(composed)), searchpath=settings.searchpath)


def _check_registers(source: str, registers: str) -> None:
    """The pretrain sweep registers a new version of ``registers`` with the aliases a
    sweep sets: refuse, before it trains, a source it could never satisfy.

    Raises:
        ConfigError: another model name, a version number, or another alias.
    """
    name, number, alias = parse_model_uri(source, "transfer.source")
    if name == registers and (alias in (CHAMPION, LATEST) or number == "1"):
        return  # a first version gets both aliases
    hint = f"models:/{registers}@{CHAMPION}"
    if name != registers:
        why = f"transfer.pretrain registers '{registers}', not '{name}'"
    else:
        why = f"transfer.pretrain registers a new version of '{registers}', " + (
            f"not version {number}" if number else f"with @{CHAMPION} and @{LATEST}, not @{alias}"
        )
    raise ConfigError(
        f"transfer.source={source}: not registered, and {why}; use {hint}, or register "
        "the source first and set transfer.pretrain=null"
    )
