"""How a sweep's final model becomes an MLflow model folder (``SweepRecorder.log_model``
uploads and registers it).

- Arrays and images: MLflow's Keras flavor with ``save_exported_model=True``: a real
  TensorFlow SavedModel with a ``serving_default`` signature, loaded by pyfunc.
- Tables: a pyfunc model from code (``served_table.py``) around the exported SavedModel,
  so ``predict`` takes raw DataFrame rows (strings and blanks included), which the Keras
  flavor cannot feed to a model with one input per column.
- Both keep the Keras model itself as ``model.keras`` (``KERAS_FILE``): a SavedModel
  serves predictions only, and a later sweep reuses the layers (``transfer.source``).

Requirements are given explicitly: inferring them costs seconds per model.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

SERVED_TABLE = Path(__file__).with_name("served_table.py")
# Beside the SavedModel that serves predictions, every logged model keeps its Keras model
# (Keras can reuse it layer by layer: a later sweep's transfer.source).
KERAS_FILE = "model.keras"


def keras_saver(
    model: Any, input_example: Any, output_example: Any, pip_requirements: list[str]
) -> Callable[[str, Any], None]:
    """``save(path, mlflow_model)`` writing ``model`` with MLflow's Keras flavor as a
    SavedModel (``mlflow_model``: the LoggedModel's metadata for the MLmodel file)."""
    import mlflow
    from mlflow.models import infer_signature

    def save(path: str, mlflow_model: Any = None) -> None:
        signature = infer_signature(input_example, output_example)
        with redirect_stdout(io.StringIO()):  # Keras' exporter prints the endpoints
            mlflow.keras.save_model(
                model,
                path,
                mlflow_model=mlflow_model,
                signature=signature,
                save_exported_model=True,
                pip_requirements=pip_requirements,
            )
        model.save(str(Path(path) / KERAS_FILE))  # the Keras model, for transfer.source

    return save


def table_saver(
    artifacts: dict[str, str],
    columns: list[str],
    outputs: list[str],
    code: list[str],
    pip_requirements: list[str],
    input_example: Any = None,
) -> Callable[[str, Any], None]:
    """``save(path, mlflow_model)`` writing the table wrapper: ``artifacts`` (the SavedModel and its
    column list), ``code`` shipped beside it, a signature naming the input columns and
    the outputs. Each column is optional and of any type: a request's ints, floats,
    booleans, strings and blanks all reach the wrapper, which converts them the way
    training did (MLflow's own enforcement refuses int64 for a float column)."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    inputs = Schema([ColSpec(AnyType(), name, required=False) for name in columns])
    signature = ModelSignature(inputs, Schema([ColSpec("double", n) for n in outputs]))

    def save(path: str, mlflow_model: Any = None) -> None:
        mlflow.pyfunc.save_model(
            path,
            mlflow_model=mlflow_model,
            python_model=str(SERVED_TABLE),
            artifacts=artifacts,
            code_paths=code,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
        )

    return save
