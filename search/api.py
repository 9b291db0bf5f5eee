"""The Python API: a sweep from Python, with the CLI's configs and overrides, on data
in memory and with a model of your own if you like. The ``sweep`` command is a thin
shell over the same steps.

    from dnn_sweep import run_sweep
    summary = run_sweep(["search_space=keras_tuner", "trials=8"], x=x, y=y)
    print(summary.best_params, summary.test, summary.model_uri)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from search.config import compose_user, to_plain, user_searchpath
from search.ray_runtime import before_ray
from search.settings import load_settings

if TYPE_CHECKING:  # Ray is imported only once the sweep's cluster is known
    from search.summary import SweepSummary


def _overrides(overrides: list[str], in_memory: Any) -> list[str]:
    """Data in memory uses the option defaults of ``dataset=arrays`` (or ``table`` for a
    DataFrame) unless a dataset is chosen explicitly."""
    if in_memory is None or any(o.split("=", 1)[0] == "dataset" for o in overrides):
        return overrides
    kind = "table" if type(in_memory).__name__ == "DataFrame" else "arrays"
    return [f"dataset={kind}", *overrides]


def run_sweep(
    overrides: list[str] | None = None,
    *,
    config_dir: str | None = None,
    x: Any = None,
    y: Any = None,
    data: Any = None,
    validation_data: Any = None,
    test_data: Any = None,
    build_model: Callable[..., Any] | None = None,
    echo: Callable[[str], None] = print,
) -> SweepSummary:
    """Run a sweep and return its summary (best params, objective, test metrics, MLflow
    ids, registered model URI).

    Args:
        overrides: Hydra overrides, as on the command line (``["trials=8",
            "search_space=mine", "objective.metric=val_loss"]``).
        config_dir: a folder of your own configs (``search_space/``, ``dataset/``,
            ``experiment/``...), used like the shipped ones (the CLI's ``-cd``).
        x, y: data in memory: arrays (rows first; x 2-D, or images), or a DataFrame
            and its target (a Series or array); it replaces the ``dataset`` group.
        data: a DataFrame holding the target column (``dataset.target``), or a
            ``tf.data.Dataset`` of (x, y) (read into memory once).
        validation_data, test_data: (x, y) pairs (or DataFrames) to use as those
            splits instead of carving them out of the data.
        build_model: ``build_model(params, spec) -> keras.Model``: your model. It gets
            every param of the trial (ours and any the search space declares for it)
            and a ``DataSpec`` (``spec.inputs``, ``spec.task``; see
            ``dnn_sweep.input_block`` / ``output_block``). Returned uncompiled, it is
            compiled with the params' optimizer and the task's loss and metrics.
        echo: where the progress lines go.

    Raises:
        ConfigError / DataError / TrackingError: bad input, before any trial starts.
        NoResultError: no trial finished an epoch.
    """
    in_memory = data if data is not None else x
    given = _overrides(list(overrides or []), in_memory)
    cfg = to_plain(compose_user(given, config_dir))
    settings = replace(
        load_settings(cfg, custom_params=build_model is not None),
        searchpath=user_searchpath(given, config_dir),
    )
    before_ray(settings)
    from search.driver import UserInputs
    from search.driver import run_sweep as run_settings
    from trainables.memory import from_memory

    loaded = None
    if in_memory is not None:
        options = {k: v for k, v in settings.dataset.items() if v is not None}
        seed = options.get("split_seed", settings.seed)
        loaded = from_memory(options, seed, x, y, data, validation_data, test_data)
    inputs = UserInputs(loaded, build_model)
    return run_settings(settings, echo=echo, inputs=inputs, overrides=given)
