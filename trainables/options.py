"""Checks every dataset loader makes of its options, in one place: no unknown key, and
the required ``path``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dnn_sweep.errors import DataError


def known_options(options: dict[str, Any], allowed: Iterable[str], dataset: str) -> None:
    """Refuse a key the loader would ignore (a typo, or another dataset's option)."""
    allowed = tuple(allowed)
    extra = sorted(set(options) - set(allowed))
    if extra:
        raise DataError(
            f"dataset.{extra[0]}: unknown option for dataset={dataset}; allowed are "
            + ", ".join(allowed)
        )


def path_option(options: dict[str, Any], dataset: str, what: str) -> str:
    """``dataset.path``, required: ``~`` expanded, a URI (``s3://...``) kept as it is."""
    path = options.get("path")
    if not isinstance(path, str) or not path:
        raise DataError(f"dataset.path: dataset={dataset} needs {what}")
    return path if "://" in path else str(Path(path).expanduser())
