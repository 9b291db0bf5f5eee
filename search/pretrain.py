"""``transfer.pretrain``: a transfer sweep whose source is not registered yet trains and
registers it first, with a sweep of its own (the transfer presets are one command). It
composes with the user's config folders too, so it can name their datasets and spaces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dnn_sweep.errors import ConfigError
from tracking.registry import find_version


def ensure_source(settings: Any, run: Callable[..., Any], say: Callable[[str], None]) -> bool:
    """Run the ``transfer.pretrain`` sweep when ``transfer.source`` names a registered
    model that is not there yet; whether it ran. ``run`` is the driver's ``run_sweep``.

    Raises:
        ConfigError: the pretrain sweep ran but registered nothing the source names.
    """
    source, overrides = settings.transfer_source, settings.transfer_pretrain
    if not overrides or not source or not source.startswith("models:/"):
        return False
    if find_version(source, settings.tracking_uri) is not None:
        return False
    from search.config import compose, searchpath_line, to_plain
    from search.settings import load_settings

    say(
        f"transfer.source={source}: not registered yet; training it first: sweep "
        + " ".join(overrides)
    )
    where = [f"tracking.uri={settings.tracking_uri}", f"ray.storage_path={settings.storage_path}"]
    composed = compose([*overrides, *where], searchpath_line(settings.searchpath))
    run(replace(load_settings(to_plain(composed)), searchpath=settings.searchpath), echo=say)
    if find_version(source, settings.tracking_uri) is None:
        raise ConfigError(
            f"transfer.pretrain: its sweep registered no model that transfer.source={source} "
            "names (give it the same name)"
        )
    return True
