"""An image folder too big to hold (or ``dataset.streaming=true`` with ``dataset=images``):
each trial reads its split with ``ray.data.read_images`` (resized with PIL's bilinear
filter, as Ray does), and the driver lists the files, never opening more than the
sample its pixel statistics come from.

The split is the in-memory path's: each file's key is a seeded hash of its path within
the folder, cut per class. (Pixels can differ slightly from the in-memory path's, which
resizes with TensorFlow, when ``image_size`` is not the files' own size.)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from dnn_sweep.errors import DataError
from search import storage
from search.streaming import SPLITS, Streamed
from trainables.files import checked_note
from trainables.images import COLOR_MODES, IMAGE_SUFFIXES, image_options
from trainables.spec import InputSpec
from trainables.splits import TRAIN, Cutoffs
from trainables.task import Task

PIL_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
# Standardization statistics come from at most this many training images (seeded).
STATS_SAMPLE = 5000


def list_images(root: str, key: str) -> tuple[list[str], list[str]]:
    """(paths relative to ``root``, class = first folder) of every image under it, for a
    local folder or a URI pyarrow reads."""
    import pyarrow.fs as pafs

    try:
        fs, base = storage.filesystem(root)
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    except (OSError, ValueError) as exc:
        raise DataError(f"{key}={root}: cannot list it ({str(exc)[:200]})") from exc
    paths = sorted(
        str(PurePosixPath(i.path).relative_to(base))
        for i in infos
        if i.type == pafs.FileType.File and i.path.lower().endswith(IMAGE_SUFFIXES)
    )
    paths = [p for p in paths if len(PurePosixPath(p).parts) > 1]
    classes = sorted({PurePosixPath(p).parts[0] for p in paths})
    if len(classes) < 2:
        raise DataError(
            f"{key}={root}: needs a folder per class, at least 2, each with images "
            f"({IMAGE_SUFFIXES}); found {len(classes)} ({', '.join(classes) or 'none'})"
        )
    return paths, [PurePosixPath(p).parts[0] for p in paths]


def _relative(path: str, root: str) -> str:
    """A path Ray Data read, relative to the folder (Ray may drop a URI's scheme)."""
    tail = root.split("://", 1)[-1].strip("/")
    path = path.split("://", 1)[-1].strip("/")
    return path[len(tail) :].strip("/") if path.startswith(tail) else path


@dataclass(frozen=True)
class ImageRules:
    """A batch Ray Data read -> one split's images and encoded labels."""

    root: str
    labels: tuple[str, ...]
    task_kind: str
    channels: int
    cuts: Cutoffs | None
    seed: int
    keep_labels: tuple[str, ...] | None = None

    def __call__(self, batch: dict[str, np.ndarray], which: int) -> dict[str, np.ndarray]:
        import pandas as pd

        from trainables.splits import assign, hash_keys

        rel = [_relative(str(p), self.root) for p in batch["path"]]
        names = np.array([PurePosixPath(r).parts[0] for r in rel], dtype=object)
        keep = np.isin(names, self.labels)
        if self.cuts is not None:
            keys = hash_keys(pd.DataFrame({"path": rel}), self.seed)
            keep &= assign(keys, names, self.cuts) == which
        images = np.asarray(batch["image"], dtype=np.uint8)
        if images.ndim == 3:  # grayscale: PIL's "L" has no channel axis
            images = images[..., None]
        index = {label: i for i, label in enumerate(self.labels)}
        dtype = np.float32 if self.task_kind == "binary" else np.int64
        y = np.array([index.get(n, -1) for n in names], dtype=dtype)
        return {"image": images[keep], "__y__": y[keep]}


@dataclass(frozen=True, eq=False)
class ImageReader:
    """How a trial reads an image split: ``read_images`` over the folder (or its own
    test/validation folder), each batch through ``ImageRules``."""

    root: str
    size: tuple[int, int]
    mode: str
    rules: ImageRules
    files: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return ["image"]

    def read(self, which: str) -> Any:
        import ray.data

        own = which in self.files
        root = self.files.get(which, self.root)
        rules = replace(self.rules, cuts=None, root=root) if own else self.rules
        split = SPLITS[which]
        images = ray.data.read_images(
            root, size=self.size, mode=PIL_MODES[self.mode], include_paths=True
        )
        return images.map_batches(lambda batch: rules(batch, split), batch_format="numpy")


def _pixel_stats(root: str, paths: list[str], size: tuple[int, int], mode: str, seed: int):
    """Per-pixel mean and std over a seeded sample of training images, read one at a
    time the way Ray Data reads them (PIL, bilinear resize, then the color mode)."""
    from PIL import Image

    fs, base = storage.filesystem(root)
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(paths))[:STATS_SAMPLE]
    total = squares = None
    for i in chosen:
        with fs.open_input_file(f"{base}/{paths[i]}") as f:
            image = Image.open(f)
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), resample=Image.BILINEAR)
            pixels = np.asarray(image.convert(PIL_MODES[mode]), dtype=np.float64).ravel()
        total = pixels if total is None else total + pixels
        squares = pixels**2 if squares is None else squares + pixels**2
    n = max(1, len(chosen))
    mean = total / n
    return mean.astype(np.float32), np.sqrt(np.maximum(squares / n - mean**2, 0)).astype(np.float32)


def estimated_bytes(options: dict[str, Any]) -> int:
    """The folder's size in memory: images x height x width x channels (uint8)."""
    from search.streaming import absolute_path

    root = absolute_path(str(options.get("path")))
    size, mode = image_options(options)
    paths, _ = list_images(root, "dataset.path")
    return len(paths) * size[0] * size[1] * COLOR_MODES[mode]


@dataclass(frozen=True)
class _Folder:
    """A streaming image folder's checked options and its listing."""

    root: str
    size: tuple[int, int]
    mode: str
    files: dict[str, str]  # separate "test" / "val" folders
    classes: tuple[str, ...] | None
    seed: int
    sizes: tuple[Any, Any]  # test_size, validation_size
    paths: list[str]
    labels: np.ndarray
    checked: int = 0  # image files opened and checked in the driver


def _check_folders(opts: dict[str, Any], root: str, paths: list[str]) -> int:
    """Every image file of the local folders (``path``, whose files ``paths`` are,
    ``test_path``, ``validation_path``) opened and checked here, before Ray: a bad one
    would fail Ray Data's read inside a trial. How many were checked (a URI's are not)."""
    from search.streaming import absolute_path
    from trainables.files import check_images, local

    checked = 0
    for key in (k for k in ("path", "test_path", "validation_path") if opts.get(k)):
        given = str(opts[key])
        folder = root if key == "path" else absolute_path(given)
        if local(folder):
            files = paths if key == "path" else list_images(folder, f"dataset.{key}")[0]
            checked += check_images((Path(folder) / f for f in files), f"dataset.{key}", given)
    return checked


def _folder(options: dict[str, Any], seed: int) -> _Folder:
    from search.streaming import absolute_path

    opts = {k: v for k, v in options.items() if v is not None}
    if opts.get("max_per_class") is not None:
        raise DataError("dataset.max_per_class: not available with dataset.streaming")
    size, mode = image_options(opts)
    root = absolute_path(str(opts.get("path")))
    paths, names = list_images(root, "dataset.path")
    classes = tuple(opts["classes"]) if opts.get("classes") is not None else None
    labels = np.array(names, dtype=object)
    keep = np.isin(labels, classes) if classes else np.ones(len(labels), bool)
    parts = (("test", "test_path"), ("val", "validation_path"))
    return _Folder(
        root,
        size,
        mode,
        {p: absolute_path(str(opts[k])) for p, k in parts if opts.get(k)},
        classes,
        opts.get("split_seed", seed),
        (opts.get("test_size", 0.2), opts.get("validation_size", 0.2)),
        [p for p, k in zip(paths, keep, strict=True) if k],
        labels[keep],
        _check_folders(opts, root, paths),
    )


def _split(folder: _Folder) -> tuple[Cutoffs, np.ndarray, dict[str, int]]:
    """Key cutoffs per class (keys: seeded hashes of the paths), each file's split, and
    the split sizes."""
    import pandas as pd

    from trainables.splits import assign, cutoffs, hash_keys, resolve_size

    n, (test, val) = len(folder.paths), folder.sizes
    n_test = 0 if "test" in folder.files else resolve_size(test, n, "dataset.test_size")
    n_val = 0 if "val" in folder.files else resolve_size(val, n, "dataset.validation_size")
    keys = hash_keys(pd.DataFrame({"path": folder.paths}), folder.seed)
    cuts = cutoffs(keys, folder.labels, n_test, n_val)
    which = assign(keys, folder.labels, cuts)
    counts = {name: int((which == code).sum()) for name, code in SPLITS.items()}
    for part, other in folder.files.items():
        key = "dataset.test_path" if part == "test" else "dataset.validation_path"
        counts[part] = len(list_images(other, key)[0])
    return cuts, which, counts


def open_images(options: dict[str, Any], seed: int, task: str) -> Streamed:
    """Describe an image folder for streaming (a listing and a pixel sample).

    Raises:
        DataError: naming the config key or folder, as the in-memory loader would.
    """
    from trainables.task import infer_task

    folder = _folder(options, seed)
    kind, why = infer_task(np.unique(folder.labels), task, "folder")
    cuts, which, counts = _split(folder)
    order = folder.classes or tuple(sorted(set(folder.labels.tolist())))
    train = [p for p, w in zip(folder.paths, which, strict=True) if w == TRAIN]
    mean, std = _pixel_stats(folder.root, train, folder.size, folder.mode, folder.seed)
    channels = COLOR_MODES[folder.mode]
    rules = ImageRules(folder.root, order, kind, channels, cuts, folder.seed, folder.classes)
    reader = ImageReader(folder.root, folder.size, folder.mode, rules, folder.files)
    inputs = InputSpec("image", (*folder.size, channels), 255.0, True, mean, std)
    notes = (
        f"streaming through Ray Data (read_images, {len(folder.paths)} files, read per epoch)",
        *([checked_note(folder.checked)] if folder.checked else []),
        f"task={task}: {kind} ({why})",
    )
    name = PurePosixPath(folder.root.rstrip("/")).name or "images"
    return Streamed(name, reader, inputs, Task(kind, order), counts, notes)
