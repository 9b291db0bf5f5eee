"""``dataset.streaming``: a table read per trial through Ray Data gives what the
in-memory path gives (same split, same statistics, the same validation metric within
half a point), while the driver holds one batch at a time, never the table."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from bench.streaming import synthetic_table as table
from search.streaming import open_table, wants_streaming
from trainables.data import load_dataset

OPTIONS = {"name": "table", "target": "label", "test_size": 0.2, "validation_size": 0.2}


def test_streaming_description_equals_the_in_memory_one(tmp_path):
    path = str(table(tmp_path / "t.csv", 3000))
    memory = load_dataset({**OPTIONS, "path": path}, seed=5)
    stream = open_table({**OPTIONS, "path": path}, seed=5, task="auto")
    assert stream.sizes() == memory.sizes() and stream.task == memory.task
    for a, b in zip(memory.inputs.columns, stream.inputs.columns, strict=True):
        assert (a.name, a.kind, a.missing, a.vocabulary) == (
            b.name,
            b.kind,
            b.missing,
            b.vocabulary,
        )
        assert b.mean == pytest.approx(a.mean, rel=1e-5, abs=1e-6)
        assert b.variance == pytest.approx(a.variance, rel=1e-4)


def test_the_driver_holds_one_batch_not_the_table(tmp_path, monkeypatch):
    import trainables.table_scan as scan

    monkeypatch.setattr(scan, "BATCH_ROWS", 4096)  # 60k rows: 15 batches
    path = str(table(tmp_path / "big.csv", 60000))
    tracemalloc.start()
    load_dataset({**OPTIONS, "path": path}, seed=0)
    in_memory = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    tracemalloc.start()
    open_table({**OPTIONS, "path": path}, seed=0, task="auto")
    streamed = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert streamed < in_memory / 3, (streamed, in_memory)


def test_auto_streams_what_does_not_fit(tmp_path, monkeypatch):
    import search.streaming as streaming

    path = str(table(tmp_path / "t.csv", 500))
    assert not wants_streaming({**OPTIONS, "path": path})
    monkeypatch.setattr(streaming, "memory_limit", lambda: 1000)
    assert wants_streaming({**OPTIONS, "path": path})
    assert not wants_streaming({**OPTIONS, "path": path, "streaming": False})
    assert wants_streaming({**OPTIONS, "path": "s3://bucket/t.parquet"})
    assert not wants_streaming({"name": "digits"})


@pytest.mark.slow
@pytest.mark.usefixtures("shared_ray")
def test_streamed_training_matches_the_in_memory_one(tmp_path):
    """The same trial trained on the table in memory and read through Ray Data: the same
    rows, and the validation and test scores within half a point. In-process: the
    streamed sweep end to end is the image-folder case below."""
    from trainables.evaluate import score
    from trainables.task import Objective
    from trainables.train import train

    path = table(tmp_path / "t.csv", 40000)
    options = {**OPTIONS, "path": str(path)}
    memory_data, stream_data = load_dataset(options, seed=0), open_table(options, 0, "auto")
    key = memory_data.inputs.columns[0].key
    for which, x in (("train", memory_data.x_train), ("val", memory_data.x_val)):
        read = stream_data.rows(which).to_pandas()[key].astype("float32").to_numpy()
        np.testing.assert_array_equal(np.sort(read), np.sort(x[key]))  # the same rows
    params = {
        "n_hidden": 2,
        "n_neurons": 32,
        "optimizer": "adam",
        "learning_rate": 0.003,
        "input_norm": "standardize",
        "batch_size": 128,
    }
    scores = {}
    for name, data in (("memory", memory_data), ("stream", stream_data)):
        models = []
        result = train(
            params,
            data,
            max_epochs=4,
            on_epoch_end=lambda epoch, logs, model, last, kept=models: kept.append(model),
            objective=Objective("val_accuracy", "max"),
        )
        scores[name] = (result.best, score(models[-1], data, "test")["accuracy"])
    assert scores["memory"][0] > 0.9, scores
    assert abs(scores["stream"][0] - scores["memory"][0]) <= 0.005, scores
    assert abs(scores["stream"][1] - scores["memory"][1]) <= 0.01, scores


def image_folder(root, per_class: int = 40):
    """Fashion-MNIST images of three classes as PNG files, a folder per class."""
    from PIL import Image

    from trainables.builtin import load_fashion_mnist_arrays

    a = load_fashion_mnist_arrays()
    names = {0: "tshirt", 1: "trouser", 7: "sneaker"}
    for label, name in names.items():
        (root / name).mkdir(parents=True)
        for i, image in enumerate(a["x_train"][a["y_train"] == label][:per_class]):
            Image.fromarray(image, mode="L").save(root / name / f"{i}.png")
    return root


@pytest.mark.slow
@pytest.mark.usefixtures("shared_ray")
def test_an_image_folder_streams_the_same_split_and_pixels(tmp_path):
    from dnn_sweep import run_sweep
    from search.streaming import open_streamed

    root = image_folder(tmp_path / "photos")
    options = {
        "name": "images",
        "path": str(root),
        "image_size": [28, 28],
        "color_mode": "grayscale",
        "test_size": 0.25,
        "validation_size": 0.25,
    }
    memory = load_dataset(options, seed=3)
    stream = open_streamed({**options, "streaming": True}, 3, "auto")
    assert stream.sizes() == memory.sizes() and stream.task == memory.task
    assert stream.inputs.shape == memory.inputs.shape == (28, 28, 1)
    np.testing.assert_allclose(stream.inputs.mean, memory.inputs.mean, atol=1e-3)
    val = np.concatenate(
        [b["image"] for b in stream.rows("val").iter_batches(batch_format="numpy")]
    )
    assert sorted(val.reshape(len(val), -1).sum(1).tolist()) == sorted(
        memory.x_val.reshape(len(memory.x_val), -1).sum(1).tolist()
    )  # the same images (native size: no resizing on either path)
    summary = run_sweep(
        [
            "dataset=images",
            f"dataset.path={root}",
            "dataset.image_size=[28,28]",
            "dataset.color_mode=grayscale",
            "dataset.streaming=true",
            "trials=1",
            "max_epochs=2",
            "search_space=keras_tuner",
            "search_space.params.optimizer=adam",
            f"tracking.uri=sqlite:///{tmp_path / 'm.db'}",
            f"ray.storage_path={tmp_path / 'ray'}",
            "name=photos",
            "final.refit=true",  # training and validation folders streamed as one
        ],
        echo=lambda s: None,
    )
    assert summary.task == "multiclass" and summary.test["accuracy"] > 0.6
    from mlflow.tracking import MlflowClient

    tags = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}").get_run(summary.parent_run_id).data.tags
    assert tags["refit.epochs"].isdigit() and "refit.error" not in tags
