"""A table sweep's registered model as MLflow serves it (MLflow "models from code").

``mlflow.pyfunc.load_model(uri).predict(frame)`` takes raw rows: the columns by their own
names, strings and blanks included; ``rows.py`` (shipped beside this file) turns them into
the exported SavedModel's inputs, and the predictions come back as a DataFrame, one
column per class (or label, or the predicted value). Needs only MLflow, TensorFlow,
pandas and numpy: not dnn-sweep.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class TableModel(PythonModel):
    """Raw DataFrame rows -> the SavedModel's ``serve`` endpoint -> predictions."""

    def load_context(self, context):  # noqa: ANN001 - MLflow reads type hints as a schema
        import tensorflow as tf

        self._model = tf.saved_model.load(context.artifacts["saved_model"])
        spec = json.loads(Path(context.artifacts["columns"]).read_text())
        self._columns = [tuple(c) for c in spec["columns"]]
        self._outputs = list(spec["outputs"])

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ANN001, ANN201
        # (a DataFrame hint: MLflow infers no schema from it; the signature is logged)
        import tensorflow as tf
        from rows import to_inputs  # shipped with the model (code_paths)

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        inputs = {k: tf.constant(v) for k, v in to_inputs(frame, self._columns).items()}
        out = np.asarray(self._model.serve(inputs)).reshape(len(frame), -1)
        return pd.DataFrame(out, columns=self._outputs, index=frame.index)


mlflow.models.set_model(TableModel())
