"""``dataset=arrays`` (.npz) and ``dataset=images`` (a folder of class folders)."""

from __future__ import annotations

import numpy as np
import pytest

from trainables.data import DataError, load_dataset


def test_npz_with_x_and_y_is_split_here(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(100, 5)), y=rng.integers(0, 3, 100))
    ds = load_dataset({"name": "arrays", "path": str(tmp_path / "d.npz")}, seed=0)
    assert ds.sizes() == {"train": 60, "val": 20, "test": 20}
    assert ds.inputs.kind == "features" and ds.inputs.shape == (5,)
    assert not ds.inputs.pixels and ds.inputs.norm("auto") == "standardize"
    assert ds.task.kind == "multiclass" and ds.name == "d"


def test_npz_with_its_own_splits_and_images(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 6, 6), dtype=np.uint8)
    np.savez(
        tmp_path / "s.npz",
        x_train=images[:30],
        y_train=rng.normal(size=30),
        x_test=images[30:],
        y_test=rng.normal(size=10),
    )
    ds = load_dataset({"name": "arrays", "path": str(tmp_path / "s.npz")}, seed=0)
    assert ds.sizes()["test"] == 10 and ds.sizes()["val"] == 6  # 0.2 of the 30 to split
    assert ds.inputs.kind == "image" and ds.inputs.shape == (6, 6)
    assert ds.inputs.pixels and ds.inputs.scale == 255.0 and ds.task.kind == "regression"


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"features": np.zeros((4, 2)), "labels": np.zeros(4)},
            "holds features, labels; expected x",
        ),
        ({"x": np.zeros((4, 2))}, "has x without its pair"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(3)}, "x has 4 rows but y has 3"),
        ({"x": np.array(["a", "b"]), "y": np.zeros(2)}, "x must be numbers, one row per example"),
        (
            {
                "x_train": np.zeros((4, 2)),
                "y_train": np.zeros(4),
                "x_test": np.zeros((2, 3)),
                "y_test": np.zeros(2),
            },
            "x arrays differ in row shape",
        ),
    ],
)
def test_npz_without_the_expected_keys_names_them(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as err:
        load_dataset({"name": "arrays", "path": str(tmp_path / "bad.npz")}, seed=0)
    assert message in str(err.value) and "dataset.path=" in str(err.value)


def test_missing_or_broken_npz(tmp_path):
    with pytest.raises(DataError, match="dataset.path=.*nope.npz: no such file"):
        load_dataset({"name": "arrays", "path": str(tmp_path / "nope.npz")}, seed=0)
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(DataError, match="junk.npz: not a readable .npz file"):
        load_dataset({"name": "arrays", "path": str(tmp_path / "junk.npz")}, seed=0)


def write_images(root, classes=("boot", "shirt", "bag"), per_class=12, size=(10, 8)) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for j in range(per_class):
            pixels = rng.integers(0, 60, size=size, dtype=np.uint8) + 60 * i
            Image.fromarray(pixels, mode="L").save(folder / f"{j}.png")


def test_image_folder_is_read_resized_and_split_by_path(tmp_path):
    write_images(tmp_path / "imgs")
    opts = {
        "name": "images",
        "path": str(tmp_path / "imgs"),
        "image_size": [6, 5],
        "color_mode": "grayscale",
        "test_size": 6,
        "validation_size": 6,
    }
    ds = load_dataset(opts, seed=0)
    assert ds.sizes() == {"train": 24, "val": 6, "test": 6}
    assert ds.x_train.shape[1:] == (6, 5, 1) and ds.x_train.dtype == np.uint8
    assert ds.inputs.kind == "image" and ds.inputs.shape == (6, 5, 1) and ds.inputs.pixels
    assert ds.task.classes == ("bag", "boot", "shirt")
    assert np.bincount(ds.y_test.astype(int)).tolist() == [2, 2, 2]  # stratified
    again = load_dataset(opts, seed=0)
    np.testing.assert_array_equal(ds.x_test, again.x_test)


def test_image_folder_errors(tmp_path):
    write_images(tmp_path / "one", classes=("boot",))
    with pytest.raises(
        DataError, match=r"dataset.path=.*one: needs a folder per class, at least 2"
    ):
        load_dataset({"name": "images", "path": str(tmp_path / "one")}, seed=0)
    with pytest.raises(DataError, match="dataset.path=.*nothing: no such folder"):
        load_dataset({"name": "images", "path": str(tmp_path / "nothing")}, seed=0)
    write_images(tmp_path / "two", classes=("a", "b"))
    with pytest.raises(DataError, match=r"dataset.image_size=\[0, 4\]: must be \[height, width\]"):
        load_dataset({"name": "images", "path": str(tmp_path / "two"), "image_size": [0, 4]}, 0)
    with pytest.raises(DataError, match="dataset.color_mode='cmyk': allowed are grayscale"):
        load_dataset({"name": "images", "path": str(tmp_path / "two"), "color_mode": "cmyk"}, 0)
