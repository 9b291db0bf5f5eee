"""`python -m bench tabular`: dnn-sweep on a table of one's own against the usual
baseline for tables, scikit-learn's ``HistGradientBoostingClassifier``, on the same
split: the split dnn-sweep makes (seeded, stratified), handed to both.

The table is scikit-learn's breast-cancer data as a user would bring it: a CSV with string
labels, a derived category column and blanks (``cancer_table``). dnn-sweep runs as a user
would run it (``sweep dataset=table ... time_budget_s=180``, default search space and
objective); gradient boosting as its users run it (defaults, categories from the dtype,
NaN handled natively). Both are judged on the test split, by accuracy and ROC AUC.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def cancer_table(folder: Path) -> Path:
    """scikit-learn's breast cancer table as a CSV with string labels
    (benign/malignant), a derived category column (size_band: s/m/l) and blanks (25 in
    size_band, 25 in mean texture)."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    df = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    df["size_band"] = pd.cut(df["mean radius"], [0, 12, 15, 100], labels=["s", "m", "l"])
    df["size_band"] = df["size_band"].astype(str)
    df.loc[rng.choice(len(df), 25, replace=False), "size_band"] = None
    df.loc[rng.choice(len(df), 25, replace=False), "mean texture"] = np.nan
    df["target"] = np.where(df["target"] == 1, "benign", "malignant")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cancer.csv"
    df.to_csv(path, index=False)
    return path


def options(path: Path, seed: int) -> dict[str, Any]:
    return {"name": "table", "path": str(path), "target": "target", "split_seed": seed}


def _frame(x: dict[str, np.ndarray], data: Any) -> Any:
    import pandas as pd

    frame = pd.DataFrame({c.name: x[c.key] for c in data.inputs.columns})
    for c in data.inputs.categorical:
        frame[c.name] = frame[c.name].astype("category")
    return frame


def gradient_boosting(path: Path, seed: int) -> dict[str, Any]:
    """HistGradientBoostingClassifier fit on dnn-sweep's training split, scored on its
    test split (the same rows, the same raw values)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from trainables.data import load_dataset
    from trainables.evaluate import metrics_of

    data = load_dataset(options(path, seed), seed)
    started = time.monotonic()
    x_train = _frame(data.x_train, data)
    categories = x_train.select_dtypes("category").columns
    x_test = _frame(data.x_test, data)
    for name in categories:
        x_test[name] = x_test[name].cat.set_categories(x_train[name].cat.categories)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    model.fit(x_train, data.y_train)
    probs = model.predict_proba(x_test)[:, 1:]
    scores = metrics_of(data.task, probs, data.y_test)
    return {
        "system": "hist_gradient_boosting",
        "seed": seed,
        "seconds": time.monotonic() - started,
        "test_accuracy": scores["accuracy"],
        "test_auc": scores["auc"],
    }


def dnn_sweep(path: Path, seed: int, budget: float, out: Path) -> dict[str, Any]:
    """A default table sweep within ``budget`` seconds (from this call)."""
    from dnn_sweep import run_sweep

    started = time.monotonic()
    summary = run_sweep(
        [
            "dataset=table",
            f"dataset.path={path}",
            "dataset.target=target",
            f"dataset.split_seed={seed}",
            f"seed={seed}",
            "trials=100000",
            f"time_budget_s={budget}",
            f"name=tabular-{seed}",
            f"tracking.uri=sqlite:///{out / 'mlflow.db'}",
            f"ray.storage_path={out / 'ray'}",
        ],
        echo=lambda line: None,
    )
    return {
        "system": "dnn_sweep",
        "seed": seed,
        "seconds": time.monotonic() - started,
        "test_accuracy": summary.test["accuracy"],
        "test_auc": summary.test["auc"],
        "trials": sum(summary.trials.values()),
        "best_val_auc": summary.best_value,
    }


def report(rows: list[dict[str, Any]], budget: float) -> str:
    lines = [
        f"Table benchmark: breast cancer CSV (strings, blanks), dnn-sweep budget {budget:.0f} s",
        "",
        "| system | seed | test accuracy | test AUC | trials | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['seed']} | {r['test_accuracy']:.4f} | {r['test_auc']:.4f} "
            f"| {r.get('trials', '-')} | {r['seconds']:.0f} |"
        )
    for system in sorted({r["system"] for r in rows}):
        mine = [r for r in rows if r["system"] == system]
        acc = statistics.median(r["test_accuracy"] for r in mine)
        auc = statistics.median(r["test_auc"] for r in mine)
        lines.append(f"| **{system}** | median | **{acc:.4f}** | **{auc:.4f}** | | |")
    return "\n".join(lines)


def run(out: Path, budget: float, seeds: list[int]) -> str:
    import ray

    out.mkdir(parents=True, exist_ok=True)
    path = cancer_table(out)
    rows = []
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    try:
        for seed in seeds:
            rows.append(gradient_boosting(path, seed))
            rows.append(dnn_sweep(path, seed, budget, out))
            (out / "tabular.json").write_text(json.dumps(rows, indent=2))
    finally:
        ray.shutdown()
    text = report(rows, budget)
    (out / "tabular.md").write_text(text + "\n")
    return text
