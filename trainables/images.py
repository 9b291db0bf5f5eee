"""``dataset=images``: a folder of class folders (``path/cat/*.png``, ``path/dog/...``),
read with Keras' ``image_dataset_from_directory``, resized to ``image_size`` and kept as
uint8. The model takes images of that size (rescaling inside)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dnn_sweep.errors import DataError
from trainables.files import check_images, checked_note
from trainables.options import known_options, path_option
from trainables.spec import InputSpec
from trainables.splits import hash_keys

if TYPE_CHECKING:
    from trainables.data import Loaded

OPTIONS = (
    "path",
    "image_size",
    "color_mode",
    "test_path",
    "validation_path",
    "test_size",
    "validation_size",
)
COLOR_MODES = {"grayscale": 1, "rgb": 3, "rgba": 4}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def image_options(options: dict[str, Any]) -> tuple[tuple[int, int], str]:
    """(height, width) and color mode, checked."""
    size = options.get("image_size", [64, 64])
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in size)
    ):
        raise DataError(f"dataset.image_size={size!r}: must be [height, width] in pixels")
    mode = options.get("color_mode", "rgb")
    if mode not in COLOR_MODES:
        raise DataError(f"dataset.color_mode={mode!r}: allowed are {', '.join(COLOR_MODES)}")
    return (int(size[0]), int(size[1])), mode


def class_folders(path: str, key: str) -> list[str]:
    """The class folders of an image folder (each holding at least one image).

    Raises:
        DataError: no such folder, or fewer than two classes.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{key}={path}: no such folder")
    classes = sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.rglob("*"))
    )
    if len(classes) < 2:
        raise DataError(
            f"{key}={path}: needs a folder per class, at least 2, each with images "
            f"({IMAGE_SUFFIXES}); found {len(classes)} ({', '.join(classes) or 'none'})"
        )
    return classes


def image_files(path: str, classes: list[str]) -> list[Path]:
    """Every file Keras reads from the class folders (by suffix, as it picks them)."""
    root = Path(path)
    return [
        f
        for name in classes
        for f in sorted((root / name).rglob("*"))
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
    ]


def read_folder(
    path: str, key: str, size: tuple[int, int], mode: str, classes: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 images, class names per image, relative paths) of a class-folder tree,
    every file checked first (a bad one is named, not a TensorFlow traceback)."""
    import keras

    names = class_folders(path, key) if classes is None else classes
    check_images(image_files(path, names), key, path)
    with redirect_stdout(io.StringIO()):  # "Found N files belonging to K classes."
        ds = keras.utils.image_dataset_from_directory(
            path,
            labels="inferred",
            label_mode="int",
            class_names=names,
            color_mode=mode,
            image_size=size,
            batch_size=None,
            shuffle=False,
        )
    images, labels = [], []
    for image, label in ds.as_numpy_iterator():
        images.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
        labels.append(int(label))
    root = Path(path).resolve()
    paths = [str(Path(p).resolve().relative_to(root)) for p in ds.file_paths]
    return np.stack(images), np.array(names, dtype=str)[labels], paths


def load_images(options: dict[str, Any], seed: int) -> Loaded:
    """Read ``dataset.path`` (and ``test_path`` / ``validation_path``); split keys hash
    each image's path within the folder, so the split does not depend on read order."""
    import pandas as pd

    from trainables.data import Loaded

    known_options(options, OPTIONS, "images")
    path = path_option(options, "images", "a folder of class folders")
    size, mode = image_options(options)
    x, y, paths = read_folder(path, "dataset.path", size, mode)
    classes = sorted(set(y.tolist()))
    loaded = Loaded(
        Path(path).name or "images",
        x,
        y,
        hash_keys(pd.DataFrame({"path": paths}), seed),
        InputSpec("image", shape=tuple(x.shape[1:]), scale=255.0, pixels=True),
        test_size=options.get("test_size", 0.2),
        val_size=options.get("validation_size", 0.2),
    )
    checked = len(paths)
    for part, key in (("test", "dataset.test_path"), ("val", "dataset.validation_path")):
        other = options.get(key.split(".")[1])
        if other:
            found = class_folders(str(other), key)
            unknown = sorted(set(found) - set(classes))
            if unknown:
                raise DataError(f"{key}={other}: class {unknown[0]} is not in dataset.path")
            x_o, y_o, _ = read_folder(str(other), key, size, mode, found)
            setattr(loaded, part, (x_o, y_o))
            checked += len(y_o)
    loaded.notes.append(checked_note(checked))
    return loaded
