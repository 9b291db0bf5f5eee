"""Raw table rows -> the arrays a table model takes: the one rule, used at training time,
for split keys, and by the served model.

Numeric columns become float32, blanks and unparsable values NaN (the model imputes
them); categorical columns become strings, blanks ``""`` and whole floats ``"3"`` (a CSV
reader turns an integer column with blanks into floats). This file imports only numpy
and pandas: the registered model ships it (MLflow ``code_paths``) and serves without
dnn-sweep installed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

NUMERIC, CATEGORICAL = "numeric", "categorical"


def _text(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def column_values(values: pd.Series, kind: str) -> np.ndarray:
    """One column as the model takes it (``kind`` numeric or categorical)."""
    if kind == NUMERIC:
        if pd.api.types.is_bool_dtype(values):
            values = values.astype(np.float32)
        numbers = pd.to_numeric(values, errors="coerce")
        return numbers.to_numpy(dtype=np.float32, na_value=np.nan)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = np.array([_text(v) for v in uniques] + [""], dtype=object)
    return texts[codes]  # code -1 (missing) picks the trailing ""


def to_inputs(frame: pd.DataFrame, columns: Iterable[tuple[str, str, str]]) -> dict[str, Any]:
    """``{input key: array}`` for (column name, input key, kind) triples. A column the
    frame lacks is all blanks, so a row with a missing field still gets a prediction."""
    out = {}
    for name, key, kind in columns:
        if name in frame:
            out[key] = column_values(frame[name], kind)
        else:
            out[key] = column_values(pd.Series([None] * len(frame), dtype=object), kind)
    return out


def as_frame(inputs: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Canonical arrays back as a DataFrame (split keys hash this)."""
    return pd.DataFrame(dict(inputs))
