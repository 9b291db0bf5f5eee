"""`python -m bench streaming`: what streaming a table through Ray Data costs and saves,
at growing sizes, to place ``dataset.streaming=auto``'s switch.

For each size of a synthetic table (8 numeric columns with blanks, a category column, a
binary label; the table of tests/test_streaming.py), in fresh processes:

- the driver's peak RSS while it prepares the data: in memory (``load_dataset``) or
  described for streaming (``open_table``: two passes, one batch at a time);
- one trial of a fixed model (2 x 32, Adam), 2 epochs, each way: the second epoch's
  time (the first includes tracing) and the validation accuracy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SIZES = (50_000, 200_000, 800_000)
SHORT_SIZES = (20_000,)

# Peak RSS from /proc (VmHWM: this process' own high-water mark; getrusage's ru_maxrss
# keeps the forking parent's, so it cannot see below the benchmark process' own size).
PEAK = "print(int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024)"
PREPARE = """
import sys
sys.path.insert(0, {root!r})
options = {{"name": "table", "path": {path!r}, "target": "label"}}
if {stream}:
    from search.streaming import open_table
    open_table(options, 0, "auto")
else:
    from trainables.data import load_dataset
    load_dataset(options, 0)
"""


def synthetic_table(path: Path, n: int = 20000, seed: int = 0) -> Path:
    """A binary table: 8 numeric columns (one with 5% blanks), a category column (5%
    blanks) and a label that mixes them non-linearly."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
    df["color"] = rng.choice(["red", "green", "blue", "teal"], n)
    score = x[:, 0] * x[:, 1] + np.sin(2 * x[:, 2]) + (df["color"] == "teal") - 0.3 * x[:, 3]
    df["label"] = np.where(score > 0.2, "hot", "cold")
    df.loc[rng.choice(n, n // 20, replace=False), "f4"] = np.nan
    df.loc[rng.choice(n, n // 20, replace=False), "color"] = None
    df.to_csv(path, index=False)
    return path


def _peak_rss_mb(path: Path, stream: bool) -> float:
    root = str(Path(__file__).resolve().parents[1])
    code = PREPARE.format(root=root, path=str(path), stream=stream) + PEAK
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _baseline_rss_mb() -> float:
    code = "import pandas, pyarrow.dataset, trainables.data, search.streaming\n" + PEAK
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _sweep(path: Path, out: Path, stream: bool) -> dict[str, float]:
    """One trial, 2 epochs, from the command line; its epoch times from MLflow."""
    from mlflow.tracking import MlflowClient

    from tracking.runs import newest_sweep_runs

    name = f"{'stream' if stream else 'memory'}-{path.stem}"
    cmd = [
        str(Path(sys.executable).parent / "sweep"),
        "dataset=table",
        f"dataset.path={path}",
        "dataset.target=label",
        f"dataset.streaming={str(stream).lower()}",
        "search_space=keras_tuner",
        "search_space.params.n_hidden=2",
        "search_space.params.n_neurons=32",
        "search_space.params.optimizer=adam",
        "search_space.params.learning_rate=0.003",
        "objective.metric=val_accuracy",
        "scheduler=fifo",
        "trials=1",
        "max_epochs=2",
        "max_concurrent=1",
        f"name={name}",
        f"tracking.uri=sqlite:///{out / 'mlflow.db'}",
        f"ray.storage_path={out / 'ray'}",
    ]
    subprocess.run(cmd, cwd=out, capture_output=True, text=True, check=True, timeout=3600)
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    child = newest_sweep_runs(client, name)[1][0]
    seconds = [m.value for m in client.get_metric_history(child.info.run_id, "epoch_seconds")]
    return {"epoch_seconds": seconds[-1], "val_accuracy": child.data.metrics["val_accuracy"]}


def measure(path: Path, rows: int, out: Path) -> dict[str, Any]:
    memory, stream = _sweep(path, out, False), _sweep(path, out, True)
    return {
        "rows": rows,
        "csv_mb": path.stat().st_size / 2**20,
        "prepare_rss_mb_memory": _peak_rss_mb(path, False),
        "prepare_rss_mb_stream": _peak_rss_mb(path, True),
        "epoch_s_memory": memory["epoch_seconds"],
        "epoch_s_stream": stream["epoch_seconds"],
        "val_acc_memory": memory["val_accuracy"],
        "val_acc_stream": stream["val_accuracy"],
    }


def report(rows: list[dict[str, Any]], baseline: float) -> str:
    lines = [
        f"Streaming vs in memory (driver baseline after imports: {baseline:.0f} MB)",
        "",
        "| rows | CSV MB | driver peak RSS, in memory | driver peak RSS, streaming "
        "| epoch s, in memory | epoch s, streaming | ratio | val acc (mem / stream) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rows']:,} | {r['csv_mb']:.0f} | {r['prepare_rss_mb_memory']:.0f} MB "
            f"| {r['prepare_rss_mb_stream']:.0f} MB | {r['epoch_s_memory']:.1f} "
            f"| {r['epoch_s_stream']:.1f} | {r['epoch_s_stream'] / r['epoch_s_memory']:.1f}x "
            f"| {r['val_acc_memory']:.4f} / {r['val_acc_stream']:.4f} |"
        )
    return "\n".join(lines)


def run(out: Path, short: bool = False) -> str:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in SHORT_SIZES if short else SIZES:
        path = synthetic_table(out / f"table-{n}.csv", n)
        rows.append(measure(path, n, out))
        (out / "streaming.json").write_text(json.dumps(rows, indent=2))
    text = report(rows, _baseline_rss_mb())
    (out / "streaming.md").write_text(text + "\n")
    return text
