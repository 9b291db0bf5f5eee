"""The Python API end to end, in-process on one shared Ray: your data (a table with
strings and blanks, a regression table, arrays, an image folder, a DataFrame in memory),
your task and objective, your model; each sweep registers a model that serves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.tabular import cancer_table

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_ray")]


def base(tmp_path: Path, name: str, *extra: str) -> list[str]:
    return [
        f"name={name}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"ray.storage_path={tmp_path / 'ray'}",
        "max_concurrent=2",
        *extra,
    ]


def children(tmp_path: Path, name: str):
    from mlflow.tracking import MlflowClient

    from tests.helpers import trial_runs

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (parent,), kids = trial_runs(client, name)
    return client, parent, kids


def served(tmp_path: Path, uri: str):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        return mlflow.pyfunc.load_model(uri)
    finally:
        mlflow.set_tracking_uri(None)


def test_binary_table_with_strings_and_blanks(tmp_path):
    from dnn_sweep import run_sweep

    path = cancer_table(tmp_path)
    s = run_sweep(
        base(
            tmp_path,
            "cancer",
            "dataset=table",
            f"dataset.path={path}",
            "dataset.target=target",
            "trials=4",
            "max_epochs=3",
            "search_space=keras_tuner",
        ),
        echo=lambda line: None,
    )
    assert s.task == "binary" and (s.objective, s.mode) == ("val_auc", "max")
    assert s.test["auc"] > 0.9 and s.test["accuracy"] > 0.8
    _, parent, kids = children(tmp_path, "cancer")
    assert parent.data.params["task"] == "binary"
    assert {"test_auc", "test_accuracy", "best_val_auc"} <= set(parent.data.metrics)
    assert all("val_auc" in k.data.metrics for k in kids)
    rows = pd.read_csv(path).drop(columns="target").head(8)
    rows.loc[0, "size_band"] = None  # a blank
    rows.loc[1, "size_band"] = "huge"  # a category never seen
    rows.loc[2, "mean texture"] = None
    out = served(tmp_path, s.model_uri).predict(rows)
    assert list(out.columns) == ["malignant"] and len(out) == 8
    assert np.isfinite(out.to_numpy()).all()
    truth = pd.read_csv(path)["target"].head(8).eq("malignant").to_numpy()
    assert np.mean((out["malignant"].to_numpy() > 0.5) == truth) >= 0.75


def test_regression_table_optimizes_rmse(tmp_path):
    from sklearn.datasets import load_diabetes

    from dnn_sweep import run_sweep

    path = tmp_path / "diabetes.csv"
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(path, index=False)
    s = run_sweep(
        base(
            tmp_path,
            "diabetes",
            "dataset=table",
            f"dataset.path={path}",
            "dataset.target=target",
            "objective.metric=val_rmse",
            "objective.mode=min",
            "trials=6",
            "max_epochs=4",
            "scheduler.grace_period=1",
            "seed=1",
            "++search_space.params.regression_loss={type: categorical, choices: [mse, huber]}",
        ),
        echo=lambda line: None,
    )
    assert s.task == "regression" and s.objective == "val_rmse" and s.mode == "min"
    client, parent, kids = children(tmp_path, "diabetes")
    curves = {
        k.data.tags["trial_id"]: {
            m.step: m.value for m in client.get_metric_history(k.info.run_id, "val_rmse")
        }
        for k in kids
    }
    assert all(
        len(c) == int(k.data.tags["epochs"]) for k, c in zip(kids, curves.values(), strict=True)
    )
    best = min(min(c.values()) for c in curves.values() if c)
    assert s.best_value == pytest.approx(best)  # the lowest RMSE wins
    assert parent.data.metrics["best_val_rmse"] == pytest.approx(best)
    assert s.best_trial == f"trial-{min(curves, key=lambda t: min(curves[t].values()))}"
    stopped = [k for k in kids if k.data.tags["trial_status"] == "pruned"]
    assert stopped, "ASHA stopped no trial"
    for k in stopped:  # ASHA cut only trials another trial beat (lower RMSE) at that epoch
        epoch = int(k.data.tags["epochs"])
        mine = curves[k.data.tags["trial_id"]][epoch]
        assert any(c.get(epoch, math.inf) < mine for c in curves.values())
    assert 20 < s.test["rmse"] < 120 and "mae" in s.test
    preds = served(tmp_path, s.model_uri).predict(pd.read_csv(path).drop(columns="target").head(5))
    assert 25 < float(np.mean(preds.to_numpy())) < 350  # in the target's units


def residual_mlp(params, spec):
    """A small residual MLP of the user's own, with two params the space declares."""
    import keras

    from dnn_sweep import input_block, output_block

    inputs, x = input_block(spec.inputs)
    x = keras.layers.Dense(params["width"], activation="relu")(x)
    for _ in range(params["blocks"]):
        h = keras.layers.Dense(params["width"], activation="relu")(x)
        x = keras.layers.Add()([x, keras.layers.Dense(params["width"])(h)])
    return keras.Model(inputs, output_block(x, spec.task))


def test_a_user_model_on_arrays_in_memory(tmp_path):
    from sklearn.datasets import load_digits

    from dnn_sweep import run_sweep

    conf = tmp_path / "conf" / "search_space"
    conf.mkdir(parents=True)
    (conf / "residual.yaml").write_text(
        "name: residual\nparams:\n"
        "  blocks: {type: int, low: 1, high: 2}\n"
        "  width: {type: categorical, choices: [16, 32]}\n"
        "  learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n"
        "  optimizer: adam\n"
    )
    x, y = load_digits(return_X_y=True)
    s = run_sweep(
        base(tmp_path, "residual", "search_space=residual", "trials=3", "max_epochs=3"),
        config_dir=str(tmp_path / "conf"),
        x=x.astype("float32"),
        y=y,
        build_model=residual_mlp,
        echo=lambda line: None,
    )
    assert {"blocks", "width", "learning_rate"} <= set(s.best_params)
    assert s.task == "multiclass" and s.test["accuracy"] > 0.5
    _, parent, kids = children(tmp_path, "residual")
    assert len(kids) == 3 and all("blocks" in k.data.params for k in kids)
    assert parent.data.params["model"].startswith("build_model")
    out = np.asarray(served(tmp_path, s.model_uri).predict(x[:4].astype("float32")))
    assert out.shape == (4, 10)


def test_npz_and_an_image_folder(tmp_path):
    from PIL import Image

    from dnn_sweep import run_sweep
    from trainables.builtin import load_fashion_mnist_arrays

    a = load_fashion_mnist_arrays()
    keep = np.isin(a["y_train"], [0, 1, 7])
    images, labels = a["x_train"][keep][:240], a["y_train"][keep][:240]
    np.savez(tmp_path / "fm.npz", x=images, y=labels)
    s = run_sweep(
        base(
            tmp_path,
            "npz",
            "dataset=arrays",
            f"dataset.path={tmp_path / 'fm.npz'}",
            "trials=2",
            "max_epochs=2",
        ),
        echo=lambda line: None,
    )
    assert s.task == "multiclass" and s.test["accuracy"] > 0.5
    names = {0: "tshirt", 1: "trouser", 7: "sneaker"}
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = tmp_path / "photos" / names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{i}.png")
    s = run_sweep(
        base(
            tmp_path,
            "photos",
            "dataset=images",
            f"dataset.path={tmp_path / 'photos'}",
            "dataset.image_size=[28,28]",
            "dataset.color_mode=grayscale",
            "trials=2",
            "max_epochs=2",
        ),
        echo=lambda line: None,
    )
    assert s.task == "multiclass" and s.test["accuracy"] > 0.5
    model = served(tmp_path, s.model_uri)
    batch = images[:6, :, :, None].astype("float32")  # image tensors, 28 x 28 x 1
    out = np.asarray(model.predict(batch))
    assert out.shape == (6, 3)
    classes = ["sneaker", "trouser", "tshirt"]  # sorted folder names
    assert (
        np.mean(
            [classes[i] == names[int(t)] for i, t in zip(out.argmax(1), labels[:6], strict=True)]
        )
        >= 0.5
    )


def test_a_dataframe_in_memory_with_its_own_test_rows(tmp_path):
    from sklearn.datasets import load_wine

    from dnn_sweep import run_sweep

    df = load_wine(as_frame=True).frame
    df["target"] = df["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    test = df.sample(30, random_state=0)
    s = run_sweep(
        base(
            tmp_path,
            "wine",
            "dataset.target=target",
            "trials=2",
            "max_epochs=3",
            "objective.metric=val_loss",
        ),
        data=df.drop(test.index),
        test_data=test,
        echo=lambda line: None,
    )
    assert (s.task, s.objective, s.mode) == ("multiclass", "val_loss", "min")
    _, parent, _ = children(tmp_path, "wine")
    assert parent.data.params["test_size"] == "30"


def test_multilabel_table(tmp_path):
    from dnn_sweep import run_sweep

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(600, 4)), columns=["a", "b", "c", "d"])
    df["kind"] = rng.choice(["x", "y"], 600)
    df["big"] = (df["a"] + df["b"] > 0).astype(int)
    df["odd"] = ((df["c"] > 0) ^ (df["kind"] == "x")).astype(int)
    s = run_sweep(
        base(tmp_path, "multi", "dataset.target=[big,odd]", "trials=2", "max_epochs=4"),
        data=df,
        echo=lambda line: None,
    )
    assert (s.task, s.objective) == ("multilabel", "val_auc") and s.test["auc"] > 0.7
    out = served(tmp_path, s.model_uri).predict(df.drop(columns=["big", "odd"]).head(4))
    assert list(out.columns) == ["big", "odd"] and out.shape == (4, 2)
