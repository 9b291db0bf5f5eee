"""IDX reader on small files written here, the Fashion-MNIST folder lookup, the splits
of the built-in datasets, class filters and caps."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from trainables import builtin as data_mod
from trainables.builtin import read_idx
from trainables.data import DataError, load_dataset
from trainables.splits import random_keys, split_rows


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    arr = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + arr.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_images_and_labels(tmp_path, compress):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    got_images = read_idx(write_idx(tmp_path / "img-idx3-ubyte", images, compress))
    got_labels = read_idx(write_idx(tmp_path / "lab-idx1-ubyte", labels, compress))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.dtype == np.uint8 and got_images.shape == (3, 4, 5)


def test_read_idx_big_endian_types(tmp_path):
    ints = np.array([[1, -2], [300000, 4]], dtype=np.int32)
    floats = np.array([0.5, -1.25], dtype=np.float32)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "i", ints)), ints)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "f", floats)), floats)


def test_read_idx_rejects_malformed_files(tmp_path):
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(bad_magic)
    truncated = write_idx(tmp_path / "t", np.zeros((4, 4), np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:-3])
    with pytest.raises(DataError, match=str(truncated)):
        read_idx(truncated)
    corrupt_gz = tmp_path / "c.gz"
    corrupt_gz.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="c.gz"):
        read_idx(corrupt_gz)


def _fake_fashion(folder: Path, n_train: int = 40, n_test: int = 10) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            folder / f"{stem}-images-idx3-ubyte",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            compress=True,
        )
        write_idx(
            folder / f"{stem}-labels-idx1-ubyte",
            (np.arange(n) % 10).astype(np.uint8),
            compress=True,
        )


def test_fashion_mnist_from_configured_path(tmp_path):
    _fake_fashion(tmp_path / "fm")
    ds = load_dataset(
        {"name": "fashion_mnist", "path": str(tmp_path / "fm"), "validation_size": 8}, seed=0
    )
    assert ds.sizes() == {"train": 32, "val": 8, "test": 10}
    assert ds.x_train.shape == (32, 784) and ds.x_train.dtype == np.uint8
    assert ds.inputs.scale == 255.0 and ds.inputs.pixels and ds.task.n_outputs == 10
    assert ds.task.kind == "multiclass" and np.bincount(ds.y_val).max() == 1  # stratified


def test_fashion_mnist_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"dataset.path=.*no Fashion-MNIST IDX files"):
        load_dataset({"name": "fashion_mnist", "path": str(tmp_path)}, seed=0)
    monkeypatch.setattr(data_mod, "DEBIAN_FASHION_MNIST", tmp_path / "none")
    monkeypatch.setattr(data_mod, "KERAS_CACHE_FASHION_MNIST", tmp_path / "none2")

    def no_download():
        raise OSError("network unreachable")

    import keras

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", no_download)
    with pytest.raises(DataError) as err:
        load_dataset({"name": "fashion_mnist", "path": None}, seed=0)
    assert "apt-get install dataset-fashion-mnist" in str(err.value)
    assert "\n" not in str(err.value)


def test_split_is_fixed_by_seed_and_disjoint():
    y = np.arange(100) % 4
    a = split_rows(random_keys(100, 1), y, 10, 20)
    b = split_rows(random_keys(100, 1), y, 10, 20)
    c = split_rows(random_keys(100, 2), y, 10, 20)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])
    train, val, test = a
    assert (len(train), len(val), len(test)) == (70, 20, 10)
    assert not set(val) & set(test) and not set(train) & (set(val) | set(test))
    assert sorted(np.bincount(y[val]).tolist()) == [5, 5, 5, 5]  # stratified


def test_split_seed_fixes_the_split_whatever_the_sweep_seed():
    options = {"name": "digits", "split_seed": 0}
    a, b = load_dataset(options, seed=1), load_dataset(options, seed=2)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    c = load_dataset({"name": "digits"}, seed=2)  # unset: the sweep's seed splits
    assert not np.array_equal(c.x_val, a.x_val)
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(DataError, match="dataset.split_seed="):
            load_dataset({"name": "digits", "split_seed": bad}, seed=0)


def test_digits_splits_are_disjoint_and_stratified():
    ds = load_dataset({"name": "digits", "test_size": 360, "validation_size": 288}, seed=0)
    assert ds.sizes() == {"train": 1149, "val": 288, "test": 360}
    assert ds.inputs.shape == (64,) and ds.inputs.scale == 16.0
    assert np.bincount(ds.y_test).min() >= 35  # stratified: ~36 per class
    assert np.bincount(ds.y_val).min() >= 28  # validation too


def test_unknown_dataset_and_bad_option():
    with pytest.raises(DataError, match="dataset.name=mnist"):
        load_dataset({"name": "mnist"}, seed=0)
    with pytest.raises(DataError, match="dataset.validation_size"):
        load_dataset({"name": "digits", "validation_size": 5000}, seed=0)
    with pytest.raises(DataError, match="dataset.target: unknown option for dataset=digits"):
        load_dataset({"name": "digits", "target": "y"}, seed=0)


def test_class_filter_relabels_every_split():
    full = load_dataset({"name": "digits"}, seed=0)
    ds = load_dataset({"name": "digits", "classes": [5, 6, 7, 8, 9]}, seed=0)
    assert ds.task.n_outputs == 5 and ds.task.classes == ("5", "6", "7", "8", "9")
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert set(np.unique(y)) == {0, 1, 2, 3, 4}
    assert len(ds.y_train) == int(np.isin(full.y_train, [5, 6, 7, 8, 9]).sum())
    # relabelled in the order given: class 5 -> 0; same images as the full set's 5s
    np.testing.assert_array_equal(ds.x_test[ds.y_test == 0], full.x_test[full.y_test == 5])
    with pytest.raises(DataError, match="dataset.classes"):
        load_dataset({"name": "digits", "classes": [3, 3]}, seed=0)
    with pytest.raises(DataError, match="dataset.classes"):
        load_dataset({"name": "digits", "classes": [10]}, seed=0)
    two = load_dataset({"name": "digits", "classes": [6, 5]}, seed=0)
    assert two.task.kind == "binary" and two.task.classes == ("6", "5")  # 5 is positive
    np.testing.assert_array_equal(two.x_test[two.y_test == 1], full.x_test[full.y_test == 5])


def test_per_class_cap_applies_to_training_only():
    ds = load_dataset({"name": "digits", "classes": [0, 1, 2, 3, 4], "max_per_class": 20}, seed=0)
    assert np.bincount(ds.y_train).tolist() == [20] * 5
    full = load_dataset({"name": "digits", "classes": [0, 1, 2, 3, 4]}, seed=0)
    assert len(ds.y_val) == len(full.y_val) and len(ds.y_test) == len(full.y_test)
    again = load_dataset(
        {"name": "digits", "classes": [0, 1, 2, 3, 4], "max_per_class": 20}, seed=0
    )
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    with pytest.raises(DataError, match="dataset.max_per_class"):
        load_dataset({"name": "digits", "max_per_class": 0}, seed=0)


def test_feature_stats_come_from_the_training_split():
    ds = load_dataset({"name": "digits"}, seed=0)
    np.testing.assert_allclose(ds.inputs.mean, ds.x_train.astype(np.float32).mean(axis=0))
    np.testing.assert_allclose(ds.inputs.std, ds.x_train.astype(np.float32).std(axis=0))
