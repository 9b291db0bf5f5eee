"""Reusing a trained net's lower layers for a new task (HOML 2e ch. 11, "Reusing
Pretrained Layers"; HOML 1e ch. 11, exercise 9).

A source model is read as a stack: its *input part* (everything before the first Dense
layer: flattening, rescaling or standardization, a table's per-column preprocessing),
its *blocks* (each Dense layer with what follows it up to the next Dense: batch norm,
the activation, dropout) and its last block, the output layer, which is dropped. A
transfer model is the source's input part and its bottom ``reuse_layers`` blocks, then
``n_hidden`` new blocks and a new output layer for the new task.

The input part and the bottom ``frozen`` reused blocks are frozen: not trained, and run
as at inference (batch norm on its moving statistics, dropout left out), so their
outputs on the data never change and can be computed once (``split``). After
``freeze_epochs`` the model is built again with fewer frozen blocks and recompiled
(``phases``); ``from_scratch`` builds the same architecture with fresh weights and
nothing frozen: the comparison that says whether transfer helps here.

The source is loaded afresh for every build and its layers become the new model's:
the registered model is never changed. A model built again (another phase, a resumed
trial) takes the weights of the one before in layer order (``copy_weights``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import keras

from dnn_sweep.errors import reason
from trainables.ensemble import members_of

# Layers that only act in training: left out of frozen blocks (identity at inference).
TRAINING_ONLY = (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.GaussianNoise)


class FeatureStore(Protocol):
    """Where a frozen bottom's outputs are kept for other trials (the sweep gives one
    backed by Ray's object store); a key names the bottom and the data's rows."""

    def get(self, key: str) -> tuple[Any, ...] | None: ...

    def put(self, key: str, arrays: tuple[Any, ...]) -> None: ...


@dataclass(frozen=True)
class Stack:
    """A chain model read as input part, hidden blocks and output block."""

    inputs: list[Any]  # the model's Keras inputs (shapes, dtypes and names)
    input_part: keras.Model  # inputs -> the first Dense layer's input
    blocks: list[list[keras.layers.Layer]]

    @property
    def depth(self) -> int:
        """Hidden blocks: the source's hidden layers."""
        return len(self.blocks)


@dataclass(frozen=True)
class Phase:
    """Epochs ``[start, end)`` trained with the bottom ``frozen`` reused blocks frozen,
    at ``lr_factor`` x the learning rate."""

    start: int
    end: int
    frozen: int
    lr_factor: float = 1.0


def source_model(model: keras.Model) -> keras.Model:
    """The model whose layers are reused: an ensemble's heaviest member (the best
    trial's model), else the model itself."""
    return max(members_of(model), key=lambda pair: pair[1])[0]


def stack_of(model: keras.Model) -> Stack:
    """``model`` (a freshly loaded one: each layer used once) as a stack.

    Raises:
        ValueError: no Dense layer, or the layers from the first Dense on are not one
            chain.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    dense = [i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ValueError("has no Dense layer to reuse")
    chain = layers[dense[0] :]
    for below, above in zip(chain, chain[1:], strict=False):
        if above.input is not below.output:
            raise ValueError(
                f"is not one chain of layers from its first Dense layer on ({above.name} "
                f"does not take {below.name}'s output)"
            )
    starts = [i - dense[0] for i in dense]
    blocks = [chain[a:b] for a, b in zip(starts, [*starts[1:], len(chain)], strict=False)]
    part = keras.Model(model.inputs, chain[0].input, name="source_input_part")
    return Stack(list(model.inputs), part, blocks[:-1])


def input_shapes(model: keras.Model) -> dict[str, tuple[Any, ...]]:
    """Each input's name and shape without the batch axis: what new data must match."""
    return {t.name: tuple(t.shape[1:]) for t in model.inputs}


def phases(p: dict[str, Any], depth: int, max_epochs: int) -> list[Phase]:
    """The training phases of a transfer trial: the reused bottom frozen for
    ``freeze_epochs``, then the top ``unfreeze_top`` of the frozen blocks trained too,
    at ``finetune_lr_factor`` x the rate. Counts above what there is mean all of it."""
    reuse = min(p["reuse_layers"], depth)
    frozen = 0 if p["from_scratch"] else min(p["freeze_layers"], reuse)
    thawed = max(0, frozen - p["unfreeze_top"])
    switch = min(p["freeze_epochs"], max_epochs)
    if frozen == 0 or thawed == frozen or switch >= max_epochs:
        return [Phase(0, max_epochs, frozen)]
    first = [Phase(0, switch, frozen)] if switch > 0 else []
    return [*first, Phase(switch, max_epochs, thawed, p["finetune_lr_factor"])]


def reused(stack: Stack, p: dict[str, Any], seed: int) -> list[list[keras.layers.Layer]]:
    """The bottom ``reuse_layers`` blocks: the source's own, or (``from_scratch``) the
    same layers rebuilt from their configs with fresh, seeded weights."""
    blocks = stack.blocks[: min(p["reuse_layers"], stack.depth)]
    if not p["from_scratch"]:
        return blocks
    fresh = seed + 10_000  # not the seeds the source was built with
    return [
        [layer.__class__.from_config(_reseeded(layer.get_config(), fresh + 97 * i)) for layer in b]
        for i, b in enumerate(blocks)
    ]


def _reseeded(config: Any, seed: int) -> Any:
    """A layer config whose initializers (and dropout) draw from ``seed``, not from the
    seeds the source was built with."""
    if isinstance(config, dict):
        return {k: seed if k == "seed" else _reseeded(v, seed) for k, v in config.items()}
    if isinstance(config, list):
        return [_reseeded(v, seed) for v in config]
    return config


def frozen_input_part(stack: Stack) -> keras.Model:
    """The input part as at inference: its training-only layers replaced by identities,
    every other layer (and its weights, e.g. standardization statistics) shared."""

    def keep(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, TRAINING_ONLY):
            return keras.layers.Identity(name=f"{layer.name}_off")
        return layer

    part = keras.models.clone_model(stack.input_part, clone_function=keep)
    part.trainable = False
    return part


def bottom_up(stack: Stack, blocks: list[list[Any]], frozen: int) -> tuple[list[Any], Any, Any]:
    """(new inputs, the frozen part's output or None, the top reused block's output):
    the input part and ``blocks`` on new Keras inputs, the bottom ``frozen`` frozen."""
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name) for t in stack.inputs]
    part = frozen_input_part(stack) if frozen else stack.input_part
    part.trainable = frozen == 0
    x = part(inputs if len(inputs) > 1 else inputs[0])
    features = x if frozen else None
    for i, block in enumerate(blocks):
        for layer in block:
            layer.trainable = i >= frozen
            if i < frozen and isinstance(layer, TRAINING_ONLY):
                continue
            x = layer(x)
        if i + 1 == frozen:
            features = x
    return inputs, features, x


def split(model: keras.Model, features: Any) -> tuple[keras.Model, keras.Model]:
    """(frozen bottom, top): ``model`` cut at ``features`` (the frozen part's output).
    The bottom's outputs can be computed once; the top trains on them, its layers (and
    weights) those of ``model``."""
    bottom = keras.Model(model.inputs, features, name="frozen_bottom")
    top = keras.Model(features, model.outputs, name="trained_top")
    return bottom, top


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """``target`` takes ``source``'s weights, layer by layer in order (both built by
    the same steps: only weightless layers may differ between them).

    Raises:
        ValueError: the two models' weighted layers do not match.
    """
    theirs, ours = _weighted(source), _weighted(target)
    if len(theirs) != len(ours) or any(
        [w.shape for w in a.weights] != [w.shape for w in b.weights]
        for a, b in zip(theirs, ours, strict=True)
    ):
        raise ValueError("the models' weighted layers differ")
    for a, b in zip(theirs, ours, strict=True):
        b.set_weights(a.get_weights())


def _weighted(model: keras.Model) -> list[keras.layers.Layer]:
    found: list[keras.layers.Layer] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _weighted(layer)
        elif layer.weights:
            found.append(layer)
    return found


def phase_steps(phase: Phase, steps_per_epoch: int) -> int:
    """Optimizer steps taken before ``phase`` starts (schedules go on from there)."""
    return math.ceil(phase.start * steps_per_epoch)


def build(source: keras.Model, p: dict[str, Any], ctx: Any, frozen: int) -> tuple[Any, Any]:
    """(transfer model, the frozen part's output or None) for params ``p``: the
    source's input part and reused blocks, ``n_hidden`` new blocks, a new output layer.
    Uncompiled: each phase compiles it with its own learning rate."""
    from trainables.blocks import output_block
    from trainables.model import hidden_layers, regularizer

    stack = stack_of(source_model(source))
    inputs, features, x = bottom_up(stack, reused(stack, p, ctx.seed), frozen)
    x = hidden_layers(p, ctx, x, prefix="head")
    outputs = output_block(x, ctx.spec.task, regularizer(p), ctx.seed)
    return keras.Model(inputs, outputs, name="transfer"), features


def cached(
    args: dict[str, Any], bottom: keras.Model, frozen: int, store: FeatureStore | None = None
) -> dict[str, Any] | None:
    """``model.fit``'s data arguments with the inputs replaced by the outputs of the
    ``frozen``-block bottom, computed once (HOML 1e ch. 11, "Caching the frozen layers")
    or taken from ``store``, where another trial put them; None when the data streams
    (nothing in memory to compute them on)."""
    x, validation = args.get("x"), args.get("validation_data")
    if not _in_memory(x) or not isinstance(validation, tuple):
        return None
    key = f"frozen={frozen} rows={len(args['y'])},{len(validation[1])}"
    found = store.get(key) if store is not None else None
    if found is None:
        batch = max(args.get("batch_size") or 32, 256)
        found = tuple(bottom.predict(v, batch_size=batch, verbose=0) for v in (x, validation[0]))
        if store is not None:
            store.put(key, found)
    features, val = found
    return {**args, "x": features, "validation_data": (val, *validation[1:])}


def _in_memory(x: Any) -> bool:
    import numpy as np

    if isinstance(x, dict):
        return all(isinstance(v, np.ndarray) for v in x.values())
    return isinstance(x, np.ndarray)


def keras_file(path: str) -> str:
    """The ``.keras`` file at ``path``: the file itself, or the one a folder holds (an
    MLflow model dnn-sweep logged keeps its Keras model as ``model.keras``).

    Raises:
        ValueError: no such file or folder, or a folder without a ``.keras`` file.
    """
    where = Path(path).expanduser()
    if where.is_file():
        return str(where)
    if not where.is_dir():
        raise ValueError("no such file or folder")
    found = sorted(where.rglob("*.keras"))
    if not found:
        raise ValueError(
            "holds no .keras file (a SavedModel serves predictions only; give a .keras "
            "file, or a model dnn-sweep registered)"
        )
    return str(found[0])


KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")  # what keras.saving.load_model reads


def _check_format(path: str) -> None:
    """The file is one Keras reads, by name and first bytes: Keras' own message for
    any other file is a paragraph.

    Raises:
        ValueError: the one-line reason.
    """
    import zipfile

    suffix = Path(path).suffix.lower()
    if suffix not in KERAS_SUFFIXES:
        raise ValueError(
            f"is not a Keras model file (a {suffix or 'suffixless'} file); allowed are a "
            ".keras file (or legacy .h5), a folder holding one, or models:/NAME/VERSION"
        )
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ValueError("is not a readable .keras file (not a zip archive)")


def load(path: str) -> keras.Model:
    """The Keras model saved at ``path`` (our custom layers registered first).

    Raises:
        ValueError: the file is not a Keras model (one line: why).
    """
    import trainables.layers  # noqa: F401 - registers the custom objects
    import trainables.schedules  # noqa: F401

    _check_format(path)
    try:
        model = keras.saving.load_model(path, compile=False)  # its optimizer is not reused
    except Exception as exc:  # noqa: BLE001 - any reason it does not load
        raise ValueError(f"is not a Keras model ({type(exc).__name__}: {reason(exc)})") from None
    if not isinstance(model, keras.Model):
        raise ValueError(f"is not a Keras model (a {type(model).__name__})")
    return model


def loader(saved: bytes) -> Any:
    """A ``SourceLoader`` over a ``.keras`` file's bytes (as a trial gets them through
    Ray's object store): written once per worker process, loaded afresh per call."""
    import hashlib
    import os
    import tempfile

    path = os.path.join(
        tempfile.gettempdir(), f"dnn-sweep-source-{hashlib.sha256(saved).hexdigest()[:16]}.keras"
    )
    if not os.path.isfile(path):
        partial = f"{path}.{os.getpid()}"
        with open(partial, "wb") as f:
            f.write(saved)
        os.replace(partial, path)
    return lambda: load(path)


def data_inputs(spec: Any) -> dict[str, tuple[Any, ...]]:
    """The input names and shapes a model of data ``spec`` takes (``input_shapes``'
    terms), to compare with a source's."""
    from trainables.blocks import input_block

    raw, _ = input_block(spec.inputs)
    if isinstance(raw, dict):
        tensors = list(raw.values())
    else:
        tensors = list(raw) if isinstance(raw, list | tuple) else [raw]
    return {t.name: tuple(t.shape[1:]) for t in tensors}
