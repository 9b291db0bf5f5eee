"""Tables that do not fit in memory (or ``dataset.streaming=true``): each trial reads its
rows through Ray Data (``ray.data.read_csv`` / ``read_parquet``, fed to Keras as a
``tf.data`` pipeline), and the driver never holds them.

The driver describes the table in two streaming passes (``trainables.table_scan``): every
row's target and split key, then the training split's statistics. A trial reads the file
again, converts each batch with the same rules (``trainables.rows``), keeps the rows of
its split by the same key cutoffs, and trains; the final phase predicts the validation
and test splits batch by batch. Local paths and URIs Ray Data reads (``s3://...``) work
on a cluster: every node reads the file itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dnn_sweep.errors import ConfigError, DataError
from trainables.spec import ColumnSpec, DataSpec, InputSpec, digest
from trainables.splits import TEST, TRAIN, VAL, Cutoffs
from trainables.task import Task

SPLITS = {"train": TRAIN, "val": VAL, "test": TEST}
# Rows a trial's shuffle buffer holds (Ray Data's local shuffle; the file order is kept).
SHUFFLE_ROWS = 20_000
# A table streams (dataset.streaming=auto) when its estimated size in memory exceeds this
# share of the machine's RAM: half of the object store Ray gives itself (30% of RAM).
MEMORY_SHARE = 0.15
# What a CSV costs in memory per byte on disk (float32 numbers, Python strings), measured
# on the benchmark tables (bench/README.md, streaming).
CSV_EXPANSION = 1.5


@dataclass(frozen=True)
class RowRules:
    """Everything a Ray Data task needs to turn a batch of raw rows into a split's model
    inputs: plain values, pickled once per trial."""

    columns: tuple[ColumnSpec, ...]
    targets: tuple[str, ...]
    target_kinds: tuple[str, ...]
    task_kind: str
    labels: tuple[Any, ...]  # raw label of each class index (classification)
    cuts: Cutoffs | None  # None: a separate file, every row of it
    seed: int
    stratify: bool
    keep_labels: tuple[Any, ...] | None = None  # dataset.classes

    def __call__(self, frame: Any, which: int) -> dict[str, np.ndarray]:
        from trainables.table_scan import in_split
        from trainables.tables import frame_rows

        inputs, y, _ = frame_rows(
            frame,
            list(self.columns),
            list(self.targets),
            "batch",
            "dataset.path",
            list(self.target_kinds),
        )
        keep = np.ones(len(y), dtype=bool)
        if self.keep_labels is not None:
            keep &= np.isin(y, self.keep_labels)
        if self.cuts is not None:
            keep &= in_split(which, self.cuts, self.seed, self.stratify)(inputs, y)
        out = {k: v[keep] for k, v in inputs.items()}
        out["__y__"] = self._encode(y[keep])
        return out

    def _encode(self, y: np.ndarray) -> np.ndarray:
        if self.task_kind in ("multiclass", "binary"):
            index = {v: i for i, v in enumerate(self.labels)}
            dtype = np.float32 if self.task_kind == "binary" else np.int64
            return np.array([index[v] for v in y.tolist()], dtype=dtype)
        return y.astype(np.float32)


def _quiet_data() -> None:
    import logging

    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # a line per read, per epoch
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def _numpy(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray Data hands strings back as fixed-width unicode; Keras takes Python strings."""
    return {k: v.astype(object) if v.dtype.kind == "U" else v for k, v in batch.items()}


@dataclass(frozen=True, eq=False)
class TableReader:
    """How a trial reads a table's split: the file (or its own test/validation file),
    each batch through ``RowRules``."""

    source: str
    fmt: str
    rules: RowRules
    files: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [c.key for c in self.rules.columns]

    def read(self, which: str) -> Any:
        import ray.data

        read = ray.data.read_parquet if self.fmt == "parquet" else ray.data.read_csv
        rules = _whole(self.rules) if which in self.files else self.rules
        split = SPLITS[which]
        return read(self.files.get(which, self.source)).map_batches(
            lambda frame: rules(frame, split), batch_format="pandas"
        )


@dataclass(frozen=True, eq=False)
class Streamed:
    """Data read through Ray Data: what ``train`` and the final phase need of a dataset
    (``spec``, ``fit_args``, ``predict``, ``head``), without its rows."""

    name: str
    reader: Any  # TableReader or ImageReader
    inputs: InputSpec
    task: Task
    counts: dict[str, int]
    notes: tuple[str, ...] = ()

    def sizes(self) -> dict[str, int]:
        return dict(self.counts)

    @property
    def spec(self) -> DataSpec:
        return DataSpec(self.inputs, self.task, self.name, self.sizes())

    def rows(self, which: str) -> Any:
        """The rows of split ``which`` as a Ray Data dataset (read lazily)."""
        _quiet_data()
        return self.reader.read(which)

    def fit_args(self, batch_size: int, seed: int) -> dict[str, Any]:
        """The training and validation splits as ``tf.data`` pipelines: each epoch reads
        the files again (a shuffle buffer mixes rows locally)."""
        keys = self.reader.features
        train = self.rows("train").to_tf(
            keys,
            "__y__",
            batch_size=batch_size,
            local_shuffle_buffer_size=max(SHUFFLE_ROWS, batch_size),
            local_shuffle_seed=seed,
        )
        val = self.rows("val").to_tf(keys, "__y__", batch_size=max(batch_size, 1024))
        return {"x": train, "validation_data": val}

    def refit_args(self, batch_size: int, seed: int) -> dict[str, Any]:
        """The training and validation splits read as one training pipeline (a refit)."""
        both = self.rows("train").union(self.rows("val"))
        return {
            "x": both.to_tf(
                self.reader.features,
                "__y__",
                batch_size=batch_size,
                local_shuffle_buffer_size=max(SHUFFLE_ROWS, batch_size),
                local_shuffle_seed=seed,
            )
        }

    def predict(self, model: Any, which: str) -> tuple[np.ndarray, np.ndarray]:
        """(outputs, targets) on a split, batch by batch: never the whole split in hand."""
        outputs, targets = [], []
        for batch in self.rows(which).iter_batches(batch_size=4096, batch_format="numpy"):
            x, y = self._split_batch(batch)
            if len(y):
                out = np.asarray(model.predict_on_batch(x), dtype=np.float64)
                outputs.append(out.reshape(len(y), -1))
                targets.append(y)
        return np.concatenate(outputs), np.concatenate(targets)

    def digest(self, split: str) -> str:
        """A digest of split ``split`` without reading it all: its row count and its
        first rows (the split is a seeded function of the files); read once."""
        return self._digests[split]

    @cached_property
    def _digests(self) -> dict[str, str]:
        return {
            s: digest(
                str(self.counts.get(s, 0)).encode(),
                _numpy(self.rows(s).take_batch(256, batch_format="numpy")),
            )
            for s in ("train", "val", "test")
        }

    def head(self, n: int) -> tuple[Any, np.ndarray]:
        """The first ``n`` validation rows (an input example for the logged model)."""
        return self._split_batch(self.rows("val").take_batch(n, batch_format="numpy"))

    def _split_batch(self, batch: dict[str, np.ndarray]) -> tuple[Any, np.ndarray]:
        batch = _numpy(batch)
        y = batch.pop("__y__")
        features = self.reader.features
        return (
            batch if len(features) > 1 or self.inputs.kind == "table" else batch[features[0]]
        ), y


def _whole(rules: RowRules) -> RowRules:
    return replace(rules, cuts=None)


def estimated_bytes(path: str, fmt: str) -> int:
    """The table's size in memory, estimated without reading it: Parquet's own
    (uncompressed) row-group sizes, or the CSV's size on disk x ``CSV_EXPANSION``."""
    from trainables.files import parquet_metadata, table_files

    files = [f for f in table_files(path) if f.is_file()]
    if fmt == "parquet":
        total = 0
        for f in files:
            meta = parquet_metadata(f, "dataset.path", path)
            total += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        return total
    return int(sum(f.stat().st_size for f in files) * CSV_EXPANSION)


def memory_limit() -> int:
    """Bytes above which a table streams (``dataset.streaming=auto``)."""
    import psutil

    return int(psutil.virtual_memory().total * MEMORY_SHARE)


STREAMABLE = ("table", "images")


def wants_streaming(options: dict[str, Any]) -> bool:
    """``dataset.streaming``: true, false, or auto (stream a table or an image folder
    whose estimated size in memory exceeds ``memory_limit()``; a URI, whose size we do
    not measure, streams)."""
    mode, name = options.get("streaming", "auto"), options.get("name")
    if mode not in (True, False, "auto"):
        raise ConfigError(f"dataset.streaming={mode!r}: allowed are auto, true, false")
    if name not in STREAMABLE:
        if mode is True:
            raise ConfigError(
                f"dataset.streaming=true: dataset={name} is read whole; "
                f"allowed with {', '.join(STREAMABLE)}"
            )
        return False
    if mode != "auto":
        return bool(mode)
    path = options.get("path")
    if not isinstance(path, str) or not path or ("://" not in path and not Path(path).exists()):
        return False  # the loader names what is wrong with the path
    if "://" in path:
        return True
    return _estimate(options) > memory_limit()


def _estimate(options: dict[str, Any]) -> int:
    if options.get("name") == "images":
        from search.streamed_images import estimated_bytes as image_bytes

        return image_bytes(options)
    from trainables.tables import table_format

    path = str(options["path"])
    return estimated_bytes(path, table_format(path, options.get("format")))


def open_streamed(options: dict[str, Any], seed: int, task: str) -> Streamed:
    """A table or an image folder, described for streaming."""
    if options.get("name") == "images":
        from search.streamed_images import open_images

        return open_images(options, seed, task)
    return open_table(options, seed, task)


def free_cpu_needed(cluster_address: str | None, max_concurrent: int, cpus: int) -> int | None:
    """Local streaming sweeps leave one CPU to Ray Data's read tasks (a trial's pipeline
    waits on them): the most trials that leaves room for, or None when it fits."""
    if cluster_address is not None:
        return None
    cores = os.cpu_count() or 1
    if max_concurrent * cpus <= cores - 1:
        return None
    return max(1, (cores - 1) // cpus)


@dataclass(frozen=True)
class _Source:
    """A streaming table's checked options."""

    path: str
    fmt: str
    targets: tuple[str, ...]
    kinds: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    files: dict[str, str]  # separate "test" / "val" files
    classes: tuple[Any, ...] | None
    seed: int
    sizes: tuple[Any, Any]  # test_size, validation_size


def _source(options: dict[str, Any], seed: int) -> _Source:
    from trainables import table_scan as scan
    from trainables.files import check_table
    from trainables.options import known_options
    from trainables.tables import OPTIONS, column_names, table_columns, table_format

    opts = {k: v for k, v in options.items() if v is not None}
    seed = opts.pop("split_seed", seed)
    classes = opts.pop("classes", None)
    if opts.pop("max_per_class", None) is not None:
        raise DataError("dataset.max_per_class: not available with dataset.streaming")
    for key in ("name", "streaming"):
        opts.pop(key, None)
    known_options(opts, OPTIONS, "table")
    path = absolute_path(str(opts.get("path")))  # trials run in other folders (and nodes)
    fmt = table_format(path, opts.get("format"))
    targets = column_names(opts.get("target"), "dataset.target")
    if not targets:
        raise DataError("dataset.target: name the column to predict")
    parts = (("test", "test_path"), ("val", "validation_path"))
    for key in (k for k in ("path", "test_path", "validation_path") if opts.get(k)):
        given = str(opts[key])  # each file checked here, before Ray, named as given
        own = fmt if key == "path" else table_format(given, None, f"dataset.{key}")
        check_table(given, own, f"dataset.{key}")
    sample = scan.head(path, fmt, "dataset.path")
    return _Source(
        path,
        fmt,
        tuple(targets),
        tuple(scan.target_kinds(sample, targets)),
        tuple(table_columns(sample, opts, targets, path)),
        {p: absolute_path(str(opts[k])) for p, k in parts if opts.get(k)},
        tuple(classes) if classes is not None else None,
        seed,
        (opts.get("test_size", 0.2), opts.get("validation_size", 0.2)),
    )


def _scan(source: _Source, path: str) -> Any:
    """First pass over one file, rows outside ``dataset.classes`` left out."""
    from trainables import table_scan as scan
    from trainables.tables import table_format

    fmt = table_format(path, None) if path != source.path else source.fmt
    found = scan.scan_targets(
        path, fmt, list(source.columns), list(source.targets), list(source.kinds), source.seed
    )
    if source.classes is None:
        return found
    wanted = (
        [found.labels.index(str(c)) for c in source.classes if str(c) in found.labels]
        if (found.labels is not None)
        else list(source.classes)
    )
    keep = np.isin(found.y, wanted)
    return replace(found, y=found.y[keep], keys=found.keys[keep])


def _cuts(source: _Source, main: Any, stratify: bool) -> tuple[Cutoffs, np.ndarray]:
    """The split's key cutoffs (strata named by the raw labels trials see) and each
    scanned row's split."""
    from trainables.splits import assign, cutoffs, resolve_size

    n = len(main.y)
    test, val = source.sizes
    n_test = 0 if "test" in source.files else resolve_size(test, n, "dataset.test_size")
    n_val = 0 if "val" in source.files else resolve_size(val, n, "dataset.validation_size")
    strata, names = (main.y, None) if main.labels is None else _sorted_codes(main)
    strata = strata if stratify else None
    cuts = cutoffs(main.keys, strata, n_test, n_val)
    which = assign(main.keys, strata, cuts)
    if stratify and names is not None:  # codes -> the labels a batch holds
        cuts = replace(cuts, strata=tuple(names[c] for c in cuts.strata))
    return cuts, which


def _sorted_codes(main: Any) -> tuple[np.ndarray, list[str]]:
    """Label codes renumbered in sorted label order: strata then come in the order the
    in-memory path's labels do, and share out split rows the same way."""
    names = sorted(main.labels)
    rank = np.array([names.index(label) for label in main.labels], dtype=np.int32)
    return rank[main.y], names


def open_table(options: dict[str, Any], seed: int, task: str) -> Streamed:
    """Describe a table for streaming, in two passes that hold one batch at a time.

    Raises:
        DataError: naming the config key or file, as the in-memory loader would.
    """
    from trainables import table_scan as scan
    from trainables.task import infer_task, with_target_stats

    source = _source(options, seed)
    main = _scan(source, source.path)
    others = {part: _scan(source, path) for part, path in source.files.items()}
    distinct = np.concatenate([main.distinct(), *(o.distinct() for o in others.values())])
    kind, why = infer_task(distinct, task, ",".join(source.targets))
    stratify = kind in ("multiclass", "binary")
    cuts, which = _cuts(source, main, stratify)
    labels: tuple[Any, ...] = ()
    if stratify:  # class index i is labels[i]: dataset.classes' order, else sorted
        labels = source.classes or tuple(np.unique(distinct).tolist())
    rules = RowRules(
        source.columns,
        source.targets,
        source.kinds,
        kind,
        labels,
        cuts,
        source.seed,
        stratify,
        source.classes,
    )
    train_rows = scan.in_split(TRAIN, cuts, source.seed, stratify)
    if source.classes is not None:
        train_rows = _and_classes(train_rows, source.classes)
    stats = scan.scan_stats(
        source.path,
        source.fmt,
        list(source.columns),
        list(source.targets),
        list(source.kinds),
        train_rows,
    )
    counts = {name: int((which == code).sum()) for name, code in SPLITS.items()}
    counts.update({part: len(other.y) for part, other in others.items()})
    task_value = _task(kind, labels, list(source.targets))
    if kind == "regression":
        task_value = with_target_stats(task_value, main.values(which == TRAIN))
    notes = [f"streaming through Ray Data ({source.fmt}, {len(main.y)} rows, read per epoch)"]
    notes += [f"dropped {main.dropped} rows without a target"] if main.dropped else []
    notes.append(f"task={task}: {kind} ({why})")
    name = Path(source.path.rstrip("/")).stem or "table"
    reader = TableReader(source.path, source.fmt, rules, source.files)
    inputs = InputSpec("table", columns=stats)
    return Streamed(name, reader, inputs, task_value, counts, tuple(notes))


def _and_classes(mask: Any, classes: tuple[Any, ...]) -> Any:
    return lambda inputs, y: mask(inputs, y) & np.isin(y, classes)


def absolute_path(path: str) -> str:
    return path if "://" in path else str(Path(path).expanduser().resolve())


def _task(kind: str, labels: tuple[Any, ...], targets: list[str]) -> Task:
    """The task with its class names (the encoding ``RowRules`` applies)."""
    from trainables.task import label_name

    if kind == "regression":
        return Task(kind)
    if kind == "multilabel":
        return Task(kind, tuple(targets))
    return Task(kind, tuple(label_name(v) for v in labels))
