"""Is each of a user's data files what its name says? Checked in the driver before Ray
starts, cheaply (a Parquet footer, a CSV's first bytes, an image's header and data),
so that a corrupt or mislabelled file is one line naming the first bad file, not a
traceback from a reader inside a trial or TensorFlow's input pipeline.

Every loader (in memory and streamed) asks here; a URI (``s3://...``) is not opened
ahead: its reader names what is wrong with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dnn_sweep.errors import DataError, reason

# What TensorFlow's decode_image (the in-memory image path) reads; PIL names a camera's
# multi-picture JPEG "MPO".
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP")
# A CSV's first bytes checked for text: enough to tell a binary file by.
TEXT_SAMPLE = 65536


def _bad(key: str, given: str, file: Path, what: str, why: str) -> DataError:
    """The one line: ``KEY=GIVEN: not WHAT (why)`` for a file, ``KEY=GIVEN: FILE is
    not WHAT (why)`` for a file of folder GIVEN (FILE under GIVEN as the user wrote it)."""
    root = Path(given).expanduser()
    if not root.is_dir():
        return DataError(f"{key}={given}: not {what} ({why})")
    with contextlib.suppress(ValueError):  # else shown as it is
        file = root / file.resolve().relative_to(root.resolve())
    return DataError(f"{key}={given}: {file} is not {what} ({why})")


def local(path: str) -> bool:
    """A path on this machine (not a URI): its files are checked here."""
    return "://" not in path


def table_files(path: str) -> list[Path]:
    """The files a table at ``path`` is read from: the file, or every file of the
    folder that pyarrow reads (names starting with ``.`` or ``_`` are skipped, as
    ``_SUCCESS`` markers are)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        return [root]
    return [
        f
        for f in sorted(root.rglob("*"))
        if f.is_file() and not any(p.startswith((".", "_")) for p in f.relative_to(root).parts)
    ]


def parquet_metadata(file: Path, key: str, given: str) -> Any:
    """A Parquet file's footer (its row groups and schema).

    Raises:
        DataError: naming the file, when it is truncated or not Parquet.
    """
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(file).metadata
    except Exception as exc:  # noqa: BLE001 - any reason pyarrow cannot open it
        raise _bad(key, given, file, "a readable Parquet file", reason(exc)) from None


def _check_text(file: Path, key: str, given: str) -> None:
    """The first bytes of a CSV are UTF-8 text (a gzipped one's, once unpacked)."""
    import codecs
    import gzip

    opener = gzip.open if file.suffix.lower() == ".gz" else open
    try:
        with opener(file, "rb") as f:
            head = f.read(TEXT_SAMPLE)
        nul = head.find(b"\x00")
        if nul >= 0:
            raise ValueError(f"binary data: a NUL byte at offset {nul}")
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except (OSError, EOFError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise _bad(key, given, file, "a text (CSV) file", reason(exc)) from None


def check_table(path: str, fmt: str, key: str) -> None:
    """Every file of a local table opens as ``fmt`` (``csv``: text; ``parquet``: a
    footer pyarrow reads), the first bad one named.

    Raises:
        DataError: ``KEY=PATH: FILE is not ...``.
    """
    if not local(path) or not Path(path).expanduser().exists():
        return  # a URI's reader, or the loader's "no such file", names what is wrong
    for file in table_files(path):
        if fmt == "parquet":
            parquet_metadata(file, key, path)
        else:
            _check_text(file, key, path)


def _check_image(file: Path) -> None:
    """Open and check one image: a PNG's every chunk (CRCs: a truncated or damaged
    file), other formats decoded (a JPEG at 1/8 scale: truncation shows, ~0.2 ms)."""
    from PIL import Image, UnidentifiedImageError

    try:
        opened = Image.open(file)
    except UnidentifiedImageError:
        raise ValueError(f"unknown format; allowed are {', '.join(IMAGE_FORMATS)}") from None
    with opened as image:
        kind = "JPEG" if image.format == "MPO" else image.format
        if kind not in IMAGE_FORMATS:
            raise ValueError(f"a {kind} image; allowed are {', '.join(IMAGE_FORMATS)}")
        if kind == "PNG":
            image.verify()
            return
        image.draft(image.mode, (1, 1))
        image.load()


def checked_note(count: int) -> str:
    """The note a sweep prints once an image folder's files are checked."""
    return f"{count} image files checked (each opens whole, before any trial)"


def check_images(files: Iterable[Path], key: str, given: str) -> int:
    """Every image file opens and is whole; how many were checked (~0.1 ms each for
    small PNGs). The first bad one is named.

    Raises:
        DataError: ``KEY=FOLDER: FILE is not a readable image (why)``.
    """
    count = 0
    for file in files:
        try:
            _check_image(file)
        except Exception as exc:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ...
            raise _bad(key, given, file, "a readable image", reason(exc)) from None
        count += 1
    return count
