"""``transfer.source``: the model a transfer sweep reuses, found, loaded and checked
before Ray starts, and handed to every trial as its ``.keras`` bytes."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnn_sweep.errors import ConfigError

KEY = "transfer.source"


@dataclass(frozen=True)
class Source:
    """A transfer sweep's source model."""

    given: str  # as the config named it
    resolved: str  # models:/NAME/VERSION for a registered model, else the file's path
    saved: bytes  # the .keras file: what each trial loads its copy from
    depth: int  # its hidden layers

    def params(self) -> dict[str, Any]:
        """What the parent run records of it."""
        return {KEY: self.given, "transfer.resolved": self.resolved, "transfer.depth": self.depth}


def resolve_source(given: str, tracking_uri: str, spec: Any) -> Source:
    """The source ``given`` names, checked against the data's ``spec``.

    Raises:
        ConfigError: one line: missing, not a Keras model dnn-sweep can reuse, or an
            input other than the data's (both shapes named).
    """
    from tracking.registry import download_version
    from trainables import transfer

    fetched = download_version(given, tracking_uri, KEY) if given.startswith("models:/") else None
    where = fetched.folder if fetched else str(Path(given).expanduser().resolve())
    path = where
    try:
        path = transfer.keras_file(where)
        model, saved = transfer.load(path), Path(path).read_bytes()
        depth = transfer.stack_of(transfer.source_model(model)).depth
    except ValueError as exc:
        inside = f" ({Path(path).relative_to(where)})" if path != where else ""  # a folder's
        raise ConfigError(f"{KEY}={given}{inside}: {exc}") from None
    finally:
        if fetched:
            shutil.rmtree(fetched.folder, ignore_errors=True)
    theirs, ours = transfer.input_shapes(model), transfer.data_inputs(spec)
    if theirs != ours:
        raise ConfigError(
            f"{KEY}={given}: its input is {_shapes(theirs)}, this data's is {_shapes(ours)}"
        )
    return Source(given, fetched.uri if fetched else where, saved, depth)


def _shapes(inputs: dict[str, tuple[Any, ...]]) -> str:
    return ", ".join(f"{name} {tuple(shape)}" for name, shape in inputs.items())
