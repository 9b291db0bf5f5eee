"""A sweep's folder under ``ray.storage_path``: a local path or any URI Ray's storage
accepts (``s3://bucket/prefix``, ``gs://...``, with pyarrow's query options such as
``?endpoint_override=host:port&scheme=http``).

One home for joining, listing, reading and writing there, through pyarrow's filesystem
API (the one Ray Tune itself writes checkpoints and experiment state with), so a resume
finds the same folders from any machine and any working folder. Never pathlib on a URI:
it folds ``s3://b/p`` into ``s3:/b/p``.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from urllib.parse import quote, urlsplit, urlunsplit

import pyarrow.fs as pafs


def is_uri(path: str) -> bool:
    return "://" in path


def join(base: str, *parts: str) -> str:
    """``base/part/...``; a URI keeps its scheme, bucket and query string, and its new
    parts are percent-encoded (pyarrow decodes them: ``exp[1]`` stays ``exp[1]``)."""
    if not is_uri(base):
        return os.path.join(base, *parts)
    split = urlsplit(base)
    path = posixpath.join(split.path or "/", *(quote(p) for p in parts))
    return urlunsplit((split.scheme, split.netloc, path, split.query, split.fragment))


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for ``path`` (a local path, relative or not, or a URI) and the
    path within it (as Ray resolves them)."""
    if not is_uri(path):
        return pafs.LocalFileSystem(), os.path.abspath(path)
    return pafs.FileSystem.from_uri(path)


def read_text(path: str) -> str | None:
    """The file's text, or None when there is no such file."""
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(inner) as stream:
        return stream.read().decode("utf-8")


def write_text(path: str, text: str) -> None:
    """Write ``text`` whole or not at all: a reader never sees a truncated file (local:
    a temporary file renamed over it; object stores: one PUT, atomic by design)."""
    if not is_uri(path):
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        try:
            os.replace(tmp.name, path)
        except OSError:
            os.unlink(tmp.name)
            raise
        return
    fs, inner = filesystem(path)
    fs.create_dir(posixpath.dirname(inner), recursive=True)
    with fs.open_output_stream(inner) as stream:
        stream.write(text.encode("utf-8"))


def folders(path: str) -> list[str]:
    """The names of the folders directly under ``path`` (none when it does not exist)."""
    fs, inner = filesystem(path)
    selector = pafs.FileSelector(inner, allow_not_found=True, recursive=False)
    infos = fs.get_file_info(selector)
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def remove(path: str) -> None:
    """Delete the file at ``path`` (nothing when it is gone already)."""
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type == pafs.FileType.File:
        fs.delete_file(inner)
