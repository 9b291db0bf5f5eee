"""What the registered model is made of: an input example, and for tables the exported
SavedModel plus the column list its serving wrapper (``tracking/served_table.py``) reads,
with ``rows.py`` (``ROWS``), the one rule for turning raw rows into model inputs."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from trainables.spec import DataSpec

ROWS = Path(__file__).with_name("rows.py")


def example_rows(data: Any, n: int = 5) -> Any:
    """A few validation rows as a user sends them: raw values (float32 arrays), or a
    DataFrame with the table's own column names, blanks as None/NaN."""
    x, _ = data.head(n)
    if data.inputs.kind != "table":
        return np.asarray(x, dtype=np.float32)
    import pandas as pd

    frame = {}
    for c in data.inputs.columns:
        values = x[c.key]
        frame[c.name] = values if c.kind == "numeric" else [v or None for v in values.tolist()]
    return pd.DataFrame(frame)


def output_names(spec: DataSpec, target: str = "prediction") -> list[str]:
    """Names of the model's output columns: the classes (multiclass), the positive class
    (binary), the labels (multilabel), or ``target`` (regression)."""
    task = spec.task
    if task.kind in ("multiclass", "multilabel"):
        return list(task.classes)
    if task.kind == "binary":
        return [task.classes[1]]
    return [target]


def export_table_model(model: Any, spec: DataSpec, folder: Path) -> dict[str, str]:
    """Export a table model as a SavedModel plus ``columns.json`` in ``folder``, with
    the Keras model beside them; returns the artifacts the model ships ({name: path})."""
    saved = folder / "saved_model"
    with redirect_stdout(io.StringIO()):  # Keras prints the SavedModel's endpoints
        model.export(str(saved))
    columns = folder / "columns.json"
    columns.write_text(
        json.dumps(
            {
                "columns": [[c.name, c.key, c.kind] for c in spec.inputs.columns],
                "outputs": output_names(spec),
            }
        )
    )
    keras_model = folder / "model.keras"  # reusable layer by layer (transfer.source)
    model.save(str(keras_model))
    return {"saved_model": str(saved), "columns": str(columns), "keras": str(keras_model)}
