"""``dataset=table``: typed columns, seeded stratified splits by row content, statistics
from the training split only, the model's own preprocessing, and the served wrapper
that takes raw rows (strings and blanks included)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainables.data import DataError, load_dataset
from trainables.rows import column_values


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(1),
            "city": rng.choice(["paris", "oslo", "lima"], n),
            "zip": rng.choice([75001, 1150, 15001], n),
            "member": rng.choice([True, False], n),
        }
    )
    df["label"] = np.where(df["age"] + 5 * (df["city"] == "oslo") > 42, "yes", "no")
    df.loc[::17, "age"] = np.nan
    df.loc[::23, "city"] = None
    return df


def options(path, **kw):
    return {"name": "table", "path": str(path), "target": "label", **kw}


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "people.csv"
    frame().to_csv(path, index=False)
    return path


def test_columns_are_typed_and_described_from_the_training_split(csv):
    ds = load_dataset(options(csv, categorical=["zip"]), seed=0)
    kinds = {c.name: c.kind for c in ds.inputs.columns}
    assert kinds == {
        "age": "numeric",
        "city": "categorical",
        "zip": "categorical",
        "member": "numeric",
    }
    age = next(c for c in ds.inputs.columns if c.name == "age")
    train_age = ds.x_train[age.key]
    assert age.missing and age.mean == pytest.approx(np.nanmean(train_age))
    city = next(c for c in ds.inputs.columns if c.name == "city")
    assert set(city.vocabulary) == {"paris", "oslo", "lima", ""}  # blanks are a value
    zips = next(c for c in ds.inputs.columns if c.name == "zip")
    assert set(zips.vocabulary) == {"75001", "1150", "15001"}
    assert ds.task.kind == "binary" and ds.task.classes == ("no", "yes")
    assert ds.notes[-1].startswith("task=auto: binary")


def test_vocabulary_never_sees_validation_or_test_rows(tmp_path):
    df = frame()
    df.loc[0, "city"] = "atlantis"  # one row only: wherever it lands
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    ds = load_dataset(options(path), seed=0)
    city = next(c for c in ds.inputs.columns if c.name == "city")
    in_train = "atlantis" in set(ds.x_train[city.key].tolist())
    assert ("atlantis" in city.vocabulary) == in_train


def test_split_is_stratified_seeded_and_follows_the_rows_not_their_order(tmp_path, csv):
    a = load_dataset(options(csv, test_size=0.25, validation_size=0.25), seed=3)
    assert a.sizes() == {"train": 100, "val": 50, "test": 50}
    share = np.mean(np.concatenate([a.y_train, a.y_val, a.y_test]))
    for y in (a.y_train, a.y_val, a.y_test):
        assert np.mean(y) == pytest.approx(share, abs=0.03)
    shuffled = tmp_path / "shuffled.csv"
    frame().sample(frac=1.0, random_state=1).to_csv(shuffled, index=False)
    b = load_dataset(options(shuffled, test_size=0.25, validation_size=0.25), seed=3)
    key = next(c.key for c in a.inputs.columns if c.name == "age")
    assert sorted(np.nan_to_num(a.x_test[key]).tolist()) == sorted(
        np.nan_to_num(b.x_test[key]).tolist()
    )
    c = load_dataset(options(csv, test_size=0.25, validation_size=0.25), seed=4)
    assert sorted(np.nan_to_num(c.x_test[key]).tolist()) != sorted(
        np.nan_to_num(a.x_test[key]).tolist()
    )


def test_separate_test_file_parquet_and_multilabel(tmp_path):
    df = frame(300)
    df.iloc[:200].to_parquet(tmp_path / "train.parquet")
    df.iloc[200:].to_csv(tmp_path / "test.csv", index=False)
    ds = load_dataset(
        options(tmp_path / "train.parquet", test_path=str(tmp_path / "test.csv")), seed=0
    )
    assert ds.sizes()["test"] == 100 and ds.sizes()["train"] + ds.sizes()["val"] == 200
    df["young"] = (df["age"] < 35).astype(int)
    df["french"] = (df["city"] == "paris").astype(int)
    df.to_csv(tmp_path / "multi.csv", index=False)
    multi = load_dataset(
        options(tmp_path / "multi.csv", target=["young", "french"], features=["age", "zip"]),
        seed=0,
    )
    assert multi.task.kind == "multilabel" and multi.task.classes == ("young", "french")
    assert multi.y_train.shape[1] == 2


def test_regression_target_and_rows_without_one(tmp_path):
    df = frame()
    df["income"] = df["age"].fillna(40) * 1000.0 + 0.5
    df.loc[5, "income"] = np.nan
    df.drop(columns="label").to_csv(tmp_path / "r.csv", index=False)
    ds = load_dataset(options(tmp_path / "r.csv", target="income"), seed=0)
    assert ds.task.kind == "regression" and sum(ds.sizes().values()) == len(df) - 1
    assert ds.task.target_mean == pytest.approx(np.mean(ds.y_train))
    assert any("dropped 1 rows without a target" in n for n in ds.notes)


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"path": None}, "dataset.path: dataset=table needs a CSV or Parquet"),
        ({"path": "nowhere.csv"}, "dataset.path=nowhere.csv: no such file"),
        ({"target": "income"}, "dataset.target=income: no such column in"),
        ({"target": None}, "dataset.target: name the column to predict"),
        ({"features": ["age", "height"]}, "dataset.features=height: no such column"),
        ({"categorical": ["label"]}, "dataset.categorical=label: not a feature column"),
        ({"separator": ";"}, "dataset.separator: unknown option for dataset=table"),
        ({"max_categories": 0}, "dataset.max_categories=0: must be an integer >= 1"),
        ({"test_size": 1.5}, "dataset.test_size=1.5: must be a count between 1 and"),
        ({"format": "xlsx"}, "dataset.format=xlsx: allowed are auto, csv, parquet"),
    ],
)
def test_bad_table_options_name_the_key(csv, opts, message):
    base = options(csv)
    base.update(opts)
    base = {k: v for k, v in base.items() if v is not None}
    if "path" in opts and opts["path"] is None:
        base.pop("path", None)
    with pytest.raises(DataError) as err:
        load_dataset(base, seed=0)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unreadable_and_non_numeric_regression_targets(tmp_path, csv):
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataError, match=r"bad.parquet: not a readable Parquet file \("):
        load_dataset(options(bad), seed=0)
    with pytest.raises(DataError, match="task=regression: target 'label' is not numeric"):
        load_dataset(options(csv), seed=0, task="regression")
    (tmp_path / "empty.csv").write_text("a,label\n")
    with pytest.raises(DataError, match="empty.csv: the table has no rows"):
        load_dataset(options(tmp_path / "empty.csv"), seed=0)


def test_raw_values_become_model_inputs_one_way():
    numbers = column_values(pd.Series([1, None, "2.5", "x", True], dtype=object), "numeric")
    np.testing.assert_array_equal(numbers[[0, 2]], [1.0, 2.5])
    assert np.isnan(numbers[1]) and np.isnan(numbers[3])
    texts = column_values(pd.Series([3.0, None, "a", np.nan, True], dtype=object), "categorical")
    assert texts.tolist() == ["3", "", "a", "", "true"]


@pytest.mark.slow  # trains
def test_table_model_takes_raw_rows_and_serves_them(tmp_path, csv):
    import keras
    import mlflow

    from tracking.models import table_saver
    from trainables.model import BuildContext, build_model
    from trainables.serving import ROWS, example_rows, export_table_model, output_names

    ds = load_dataset(options(csv), seed=0)
    model = build_model(
        {"n_hidden": 1, "n_neurons": 8, "categorical_encoding": "embedding", "embedding_dim": 2},
        BuildContext(ds.spec),
    )
    model.fit(ds.x_train, ds.y_train, epochs=2, verbose=0)
    assert any(isinstance(layer, keras.layers.Embedding) for layer in model.layers)
    artifacts = export_table_model(model, ds.spec, tmp_path)
    columns = [c.name for c in ds.inputs.columns]
    save = table_saver(artifacts, columns, output_names(ds.spec), [str(ROWS)], [], example_rows(ds))
    save(str(tmp_path / "served"))
    served = mlflow.pyfunc.load_model(str(tmp_path / "served"))
    rows = pd.DataFrame(
        {
            "age": [30.0, None, 55.5],
            "city": ["oslo", None, "atlantis"],  # a blank and a city never seen
            "zip": [1150, 75001, 99999],
            "member": [True, False, True],
        }
    )
    out = served.predict(rows)
    assert list(out.columns) == ["yes"] and out.shape == (3, 1)
    assert np.isfinite(out.to_numpy()).all() and ((out >= 0) & (out <= 1)).all().all()
    direct = model.predict(
        {c.key: v for c, v in zip(ds.inputs.columns, _inputs(rows, ds), strict=True)}, verbose=0
    )
    np.testing.assert_allclose(out.to_numpy(), direct, rtol=1e-5)
    partial = served.predict(rows.drop(columns=["member"]))  # a missing field: blanks
    assert np.isfinite(partial.to_numpy()).all()


def _inputs(rows: pd.DataFrame, ds) -> list[np.ndarray]:
    return [column_values(rows[c.name], c.kind) for c in ds.inputs.columns]
