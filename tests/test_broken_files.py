"""Property: a broken file of the user's own (a config YAML, a data file, a transfer
source, a model that cannot be saved) ends with exit status 2 and one line naming the
file, before anything is created (no MLflow file, no Ray results, no folder) and before
Ray starts: never a traceback from a parser, Keras or TensorFlow's input pipeline.

Hypothesis breaks a good file of each kind (cut short, garbage bytes, a binary file under
a text file's name) and puts it where the command line says; the check runs in-process,
through the path ``sweep`` takes before Ray (``tests.helpers.check_inputs``).
"""

from __future__ import annotations

import gzip
import io
import re
import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FAST
from tests.helpers import check_inputs

NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
PNG_MAGIC = b"\x89PNG"
FASHION = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
FASHION += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@cache
def good_parquet() -> bytes:
    import pandas as pd

    out = io.BytesIO()
    pd.DataFrame({"a": np.arange(40.0), "y": [0, 1] * 20}).to_parquet(out)
    return out.getvalue()


@cache
def good_npz() -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, x=np.arange(60.0).reshape(20, 3), y=np.arange(20) % 2)
    return out.getvalue()


def npz_data() -> tuple[int, int]:
    """Where the first array's compressed bytes lie in ``good_npz()`` (a byte changed
    there fails zlib or the member's CRC; the last few may be padding bits)."""
    import zipfile

    info = zipfile.ZipFile(io.BytesIO(good_npz())).infolist()[0]
    header = good_npz()[info.header_offset : info.header_offset + 30]
    names, extra = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + names + extra
    return start, start + info.compress_size - 8


@cache
def good_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def idx(array: np.ndarray) -> bytes:
    """An IDX file (uint8) of ``array``."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def cut_or_garbage(good: bytes, keep_tail: int = 1, looks_good: bytes = b"") -> st.SearchStrategy:
    """``good`` cut short (at least ``keep_tail`` bytes gone), or garbage bytes that
    do not hold ``looks_good`` (a format's magic)."""
    cut = st.integers(0, len(good) - keep_tail).map(lambda n: good[:n])
    garbage = st.binary(max_size=300)
    if looks_good:
        garbage = garbage.filter(lambda b: looks_good not in b)
    return st.one_of(cut, garbage)


def binary_text(draw) -> bytes:
    """Bytes that are not a text file: a NUL or bytes UTF-8 does not have, somewhere in
    something CSV-like, or a PNG under a .csv name."""
    if draw(st.booleans()):
        return good_png()
    text = draw(st.text(alphabet="abc,0123\n", max_size=200)).encode()
    at = draw(st.integers(0, len(text)))
    marker = draw(st.sampled_from([b"\x00", b"\xff", b"\xc3\x28", b"\x89PNG"]))
    return text[:at] + marker + text[at:]


# Each kind: draw -> (write into the folder, command line, what the line must name).
Kind = Callable[..., tuple[dict[str, bytes], list[str], str]]


def csv_file(draw) -> tuple[dict[str, bytes], list[str], str]:
    name = draw(NAME) + draw(st.sampled_from([".csv", ".tsv", ".txt"]))
    return {name: binary_text(draw)}, ["dataset=table", f"dataset.path={name}"], name


def parquet_file(draw) -> tuple[dict[str, bytes], list[str], str]:
    name = draw(NAME) + ".parquet"
    broken = draw(cut_or_garbage(good_parquet(), looks_good=b"PAR1"))
    return {name: broken}, ["dataset=table", f"dataset.path={name}"], name


def parquet_folder(draw, streams=("auto", "false")) -> tuple[dict[str, bytes], list[str], str]:
    parts = draw(st.integers(2, 4))
    bad = draw(st.integers(0, parts - 1))
    files = {f"table/part-{i}.parquet": good_parquet() for i in range(parts)}
    files[f"table/part-{bad}.parquet"] = draw(cut_or_garbage(good_parquet(), looks_good=b"PAR1"))
    stream = draw(st.sampled_from(streams))
    argv = ["dataset=table", "dataset.path=table", f"dataset.streaming={stream}"]
    return files, argv, f"table/part-{bad}.parquet"


def _loads(content: bytes) -> bool:
    """NumPy reads every array of it (deflate has bits a changed byte may not matter in)."""
    try:
        with np.load(io.BytesIO(content)) as f:
            return all(f[k] is not None for k in f.files)
    except Exception:  # noqa: BLE001 - broken
        return False


def damaged_npz() -> st.SearchStrategy[bytes]:
    """``good_npz()`` with a byte of its first array changed: a zip still, its array not."""

    def damage(args: tuple[int, int]) -> bytes:
        content = bytearray(good_npz())
        content[args[0]] ^= args[1]
        return bytes(content)

    start, end = npz_data()
    flips = st.tuples(st.integers(start, end - 1), st.integers(1, 255))
    return flips.map(damage).filter(lambda content: not _loads(content))


def npz_file(draw) -> tuple[dict[str, bytes], list[str], str]:
    name = draw(NAME) + ".npz"
    broken = draw(st.one_of(cut_or_garbage(good_npz(), looks_good=b"PK"), damaged_npz()))
    return {name: broken}, ["dataset=arrays", f"dataset.path={name}"], name


def idx_folder(draw) -> tuple[dict[str, bytes], list[str], str]:
    rng = np.random.default_rng(0)
    raw = {
        FASHION[0]: idx(rng.integers(0, 255, (12, 28, 28))),
        FASHION[1]: idx(np.arange(12) % 10),
        FASHION[2]: idx(rng.integers(0, 255, (10, 28, 28))),
        FASHION[3]: idx(np.arange(10)),
    }
    files = {f"fm/{stem}.gz": gzip.compress(data, mtime=0) for stem, data in raw.items()}
    bad = draw(st.sampled_from(FASHION))
    whole, packed = raw[bad], files[f"fm/{bad}.gz"]
    cut_inside = st.integers(0, len(whole) - 1).map(lambda n: gzip.compress(whole[:n], mtime=0))
    damaged = st.binary(min_size=1, max_size=100).map(lambda b: packed[:10] + b)  # zlib's error
    files[f"fm/{bad}.gz"] = draw(st.one_of(cut_or_garbage(packed), cut_inside, damaged))
    return files, ["dataset=fashion_mnist", "dataset.path=fm"], f"fm/{bad}.gz"


def image_folder(draw, streams=("auto", "false")) -> tuple[dict[str, bytes], list[str], str]:
    files = {f"photos/{c}/{i}.png": good_png() for c in ("cat", "dog") for i in range(3)}
    bad = f"photos/{draw(st.sampled_from(['cat', 'dog']))}/{draw(NAME)}.png"
    # a PNG's last 4 bytes are its end chunk's checksum, which no reader checks
    files[bad] = draw(cut_or_garbage(good_png(), keep_tail=5, looks_good=PNG_MAGIC))
    stream = draw(st.sampled_from(streams))
    argv = ["dataset=images", "dataset.path=photos", "dataset.image_size=[8,8]"]
    return files, [*argv, f"dataset.streaming={stream}"], bad


BROKEN_YAML = ("a: b: c", "x: [1, 2", "k: 'open", "\tt: 1", "- item", "v: *nowhere", "d: {1")


def yaml_file(draw) -> tuple[dict[str, bytes], list[str], str]:
    option = draw(NAME.filter(lambda s: s not in ("true", "false", "null", "inf", "nan")))
    lines = ["name: mine", "params:", "  learning_rate: 0.01"]
    lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(BROKEN_YAML)))
    path = f"conf/search_space/{option}.yaml"
    where = draw(st.sampled_from(["-cd", "searchpath"]))
    folder = ["-cd", "conf"] if where == "-cd" else ["hydra.searchpath=[file://conf]"]
    return {path: "\n".join(lines).encode()}, [*folder, f"search_space={option}"], path


def transfer_file(draw, suffixes=(".txt", "")) -> tuple[dict[str, bytes], list[str], str]:
    name = draw(NAME) + draw(st.sampled_from(suffixes))
    content = draw(st.one_of(st.text(max_size=100).map(str.encode), st.binary(max_size=100)))
    return {name: content}, ["dataset=digits", f"transfer.source={name}"], f"transfer.source={name}"


# What each kind's line says of the file (besides naming it).
SAYS = {
    "csv": "not a text (CSV) file (",
    "parquet": "not a readable Parquet file (",
    "parquet_folder": "is not a readable Parquet file (",
    "parquet_streamed": "is not a readable Parquet file (",
    "npz": "not a readable .npz file (",
    "idx": "IDX",
    "images": "is not a readable image (",
    "images_streamed": "is not a readable image (",
    "yaml": ": ",
    "transfer": ": is not a Keras model file (a ",
    "transfer_keras": ": is not a ",
}
# A line, not a paragraph: Keras' own text for a .txt transfer source was ~560 characters.
MAX_LINE = 300

KINDS: dict[str, Kind] = {
    "csv": csv_file,
    "parquet": parquet_file,
    "parquet_folder": parquet_folder,
    "parquet_streamed": lambda draw: parquet_folder(draw, streams=("true",)),
    "npz": npz_file,
    "idx": idx_folder,
    "images": image_folder,
    "images_streamed": lambda draw: image_folder(draw, streams=("true",)),
    "yaml": yaml_file,
    "transfer": transfer_file,
    "transfer_keras": lambda draw: transfer_file(draw, suffixes=(".keras", ".h5")),
}


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_refused(folder: Path, argv: list[str], names: str, monkeypatch) -> str:
    """``sweep ARGV`` in ``folder``: exit 2, one line naming ``names``, nothing created,
    Ray not started; the line."""
    import ray

    monkeypatch.chdir(folder)
    before = _tree(folder)
    code, lines = check_inputs(*argv)
    assert code == 2 and len(lines) == 1, (argv, lines)
    assert lines[0].startswith("sweep: error: ") and names in lines[0], (argv, names, lines[0])
    assert len(lines[0]) <= MAX_LINE, lines[0]
    assert _tree(folder) == before, (argv, _tree(folder) - before)  # nothing created
    assert not ray.is_initialized()
    return lines[0]


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(
    max_examples=2 if FAST else 5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_broken_file_is_one_line_naming_it(tmp_path, monkeypatch, kind, data):
    import tempfile

    files, argv, names = KINDS[kind](data.draw)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    table = ["dataset.target=y"] if "dataset=table" in argv else []
    line = assert_refused(folder, [*argv, *table], names, monkeypatch)
    assert SAYS[kind] in line, line
    if kind == "yaml":
        assert re.search(rf"{re.escape(names)}:\d+:\d+: ", line), line


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["dataset=table", "dataset.path=gone.csv", "dataset.target=y"], "gone.csv: no such"),
        (["dataset=table", "dataset.path=gone/", "dataset.target=y"], "=gone: no such"),
        (["dataset=arrays", "dataset.path=gone.npz"], "=gone.npz: no such file"),
        (["dataset=fashion_mnist", "dataset.path=gone"], "=gone: no Fashion-MNIST"),
        (["dataset=images", "dataset.path=gone"], "=gone: no such folder"),
        (["dataset=digits", "transfer.source=gone.keras"], "=gone.keras: no such"),
        (["-cd", "gone", "dataset=digits"], "=gone: no such folder"),
        (["hydra.searchpath=[file://gone]", "search_space=mine"], "no such folder file://gone"),
    ],
)
def test_a_missing_path_is_one_line_naming_it(tmp_path, monkeypatch, argv, names):
    assert_refused(tmp_path, argv, names, monkeypatch)


@pytest.mark.parametrize("override", ["search_space=false", "experiment=null", "searcher=1"])
def test_a_group_option_hydra_reads_as_a_value_is_one_line(tmp_path, monkeypatch, override):
    """Found by the YAML property (an option named "false"): Hydra's bare ValueError."""
    line = assert_refused(tmp_path, [override], f"{override}: not an option's name", monkeypatch)
    assert "allowed are " in line


def test_a_config_file_that_is_not_utf8_is_named(tmp_path, monkeypatch):
    (tmp_path / "conf" / "search_space").mkdir(parents=True)
    (tmp_path / "conf" / "search_space" / "latin.yaml").write_bytes(b"name: caf\xe9\n")
    line = assert_refused(tmp_path, ["-cd", "conf", "search_space=latin"], "latin", monkeypatch)
    assert "conf/search_space/latin.yaml: not UTF-8 text" in line


def test_image_files_are_checked_and_counted(tmp_path):
    from PIL import Image

    from trainables.images import load_images

    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(4):
            Image.fromarray(np.full((6, 6, 3), i * 40, np.uint8)).save(tmp_path / c / f"{i}.jpg")
    loaded = load_images({"path": str(tmp_path), "image_size": [6, 6]}, 0)
    assert "8 image files checked (each opens whole, before any trial)" in loaded.notes


def test_sweep_lr_find_and_sweep_report_name_a_bad_path(tmp_path, monkeypatch, capsys):
    from search.cli import _guarded, report_main
    from search.config import compose_command_line, to_plain
    from search.lr_find import run_lr_find
    from search.settings import load_settings

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_bytes(good_png())
    argv = ["dataset=table", "dataset.path=t.csv", "dataset.target=y"]
    settings = load_settings(to_plain(compose_command_line(argv)), need_suggestion=False)
    with pytest.raises(SystemExit) as stop:
        _guarded(lambda: run_lr_find(settings, echo=print), prog="sweep-lr-find")
    with pytest.raises(SystemExit) as report:
        report_main(["mine", "--csv", "gone/x.csv"])
    lines = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2 and report.value.code == 2
    assert lines == [
        "sweep-lr-find: error: dataset.path=t.csv: not a text (CSV) file "
        "(binary data: a NUL byte at offset 8)",
        "sweep-report: error: --csv=gone/x.csv: no such folder gone",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def _model(extra=None):
    import keras

    inputs = keras.Input((64,))
    x = extra(inputs) if extra is not None else inputs
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def test_a_build_model_that_cannot_be_reloaded_is_refused_before_ray(tmp_path, monkeypatch):
    import keras
    import ray
    from sklearn.datasets import load_digits

    from dnn_sweep import run_sweep
    from dnn_sweep.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    x, y = load_digits(return_X_y=True)
    with pytest.raises(ConfigError) as refused:
        run_sweep(
            ["trials=2", "max_epochs=1"],
            x=x.astype("float32"),
            y=y,
            build_model=lambda params, spec: _model(keras.layers.Lambda(lambda t: t * 2.0)),
            echo=lambda line: None,
        )
    assert re.match(
        r"build_model: layer 'lambda(_\d+)?' \(Lambda\) cannot be saved and loaded again: ",
        str(refused.value),
    ), refused.value
    assert "register_keras_serializable" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not ray.is_initialized() and not list(tmp_path.iterdir())


class _Unregistered:
    """A layer class Keras cannot find by name when loading (made in the test)."""

    @staticmethod
    def make():
        import keras

        class Doubler(keras.layers.Layer):
            def call(self, t):
                return t * 2.0

        return Doubler(name="doubler")


def test_an_ensemble_candidate_that_does_not_load_is_named(tmp_path):
    import contextlib

    from search.final_model import Ranked, final_model
    from trainables.data import load_dataset
    from trainables.task import Objective

    class Checkpoint:
        def __init__(self, folder: Path) -> None:
            self.folder = folder

        @contextlib.contextmanager
        def as_directory(self):
            yield str(self.folder)

    pool = []
    for i, extra in enumerate([None, _Unregistered.make(), None]):
        (tmp_path / str(i)).mkdir()
        _model(extra).save(tmp_path / str(i) / "model.keras")
        pool.append(Ranked(f"t{i}", {}, 0.9 - i / 10, 1, Checkpoint(tmp_path / str(i))))
    data = load_dataset({"name": "digits"}, 0)
    final = final_model(pool, data, Objective.for_task(data.task), 3)
    assert {t.trial_id for t, _ in final.members} <= {"t0", "t2"} and len(final.dropped) == 1
    assert final.dropped[0].startswith("trial-t1: TypeError: ") and "\n" not in final.dropped[0]
