"""Transfer learning (trainables/transfer.py, search/transfer_source.py): a source read
as a stack, the phases, frozen layers that neither train nor drop out, the cached
bottom, the checks before Ray, and (slow) a sweep that reuses a registered model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dnn_sweep.errors import ConfigError
from trainables import transfer
from trainables.params import resolve


@pytest.fixture(scope="module")
def digits():
    from trainables.data import load_dataset

    return load_dataset({"name": "digits", "validation_size": 200, "test_size": 200}, 0)


def _source(digits, tmp_path, **params):
    """An (untrained) MLP of ours, saved as a .keras file: a transfer source."""
    from trainables.model import build_model
    from trainables.train import build_context

    spec = digits.spec
    base = {"n_hidden": 3, "n_neurons": 16, "dropout": 0.2, "batch_norm": "after", **params}
    model = build_model(base, build_context(spec, 32, 5, 0))
    path = tmp_path / "source.keras"
    model.save(path)
    return model, str(path)


def _p(**values):
    return resolve(values)


def test_a_source_reads_as_input_part_blocks_and_a_dropped_output(digits, tmp_path):
    model, path = _source(digits, tmp_path)
    stack = transfer.stack_of(transfer.load(path))
    assert stack.depth == 3
    first = [type(layer).__name__ for layer in stack.blocks[0]]
    assert first[0] == "Dense" and "BatchNormalization" in first and "Dropout" in first
    assert transfer.input_shapes(model) == transfer.data_inputs(digits.spec)


def test_a_branching_model_is_refused():
    import keras

    x = keras.Input((4,))
    a, b = keras.layers.Dense(3)(x), keras.layers.Dense(3)(x)
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([a, b]))
    with pytest.raises(ValueError, match="not one chain"):
        transfer.stack_of(keras.Model(x, out))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [(0, 4, 3, 1.0), (4, 10, 0, 0.1)]),  # the text's: frozen 4 epochs, then all
        ({"from_scratch": True}, [(0, 10, 0, 1.0)]),
        ({"freeze_epochs": 10}, [(0, 10, 3, 1.0)]),
        ({"unfreeze_top": 1, "finetune_lr_factor": 0.5}, [(0, 4, 3, 1.0), (4, 10, 2, 0.5)]),
        ({"reuse_layers": 2, "freeze_layers": 5}, [(0, 4, 2, 1.0), (4, 10, 0, 0.1)]),
        ({"freeze_layers": 0}, [(0, 10, 0, 1.0)]),
        ({"freeze_epochs": 0}, [(0, 10, 0, 0.1)]),
    ],
)
def test_phases(params, expected):
    got = transfer.phases(_p(**params), depth=3, max_epochs=10)
    assert [(ph.start, ph.end, ph.frozen, ph.lr_factor) for ph in got] == expected


def _built(digits, path, frozen, **params):
    return transfer.build(transfer.load(path), _p(**params), _context(digits), frozen)


def test_frozen_blocks_keep_the_sources_weights_and_run_as_at_inference(digits, tmp_path):
    source, path = _source(digits, tmp_path)
    model, features = _built(digits, path, frozen=2, reuse_layers=3, n_hidden=1)
    assert features is not None
    names = [layer.name for layer in model.layers]
    assert {"hidden_0", "hidden_1", "hidden_2", "head_0", "output"} <= set(names)
    for i in range(3):
        new, old = model.get_layer(f"hidden_{i}"), source.get_layer(f"hidden_{i}")
        pairs = zip(new.get_weights(), old.get_weights(), strict=True)
        assert all(np.array_equal(a, b) for a, b in pairs)
        assert new.trainable == (i >= 2)
    dropouts = [layer for layer in model.layers if "Dropout" in type(layer).__name__]
    assert len(dropouts) == 1  # block 2 keeps its dropout; frozen blocks run without
    x = digits.x_val[:16]
    bottom, top = transfer.split(model, features)
    assert np.allclose(top(bottom(x)), model(x), atol=1e-6)
    assert bottom(x, training=True).numpy().tolist() == bottom(x).numpy().tolist()


def test_from_scratch_is_the_same_architecture_with_fresh_weights(digits, tmp_path):
    source, path = _source(digits, tmp_path)
    model, features = _built(digits, path, frozen=0, from_scratch=True)
    assert features is None and all(layer.trainable for layer in model.layers)
    new, old = model.get_layer("hidden_0").get_weights()[0], source.get_layer("hidden_0")
    assert new.shape == old.get_weights()[0].shape
    assert not np.array_equal(new, old.get_weights()[0])


def test_a_model_built_for_the_next_phase_takes_the_weights(digits, tmp_path):
    _, path = _source(digits, tmp_path)
    first, _ = _built(digits, path, frozen=3, n_hidden=1)
    first.get_layer("head_0").set_weights(
        [w + 1.0 for w in first.get_layer("head_0").get_weights()]
    )
    second, features = _built(digits, path, frozen=1, n_hidden=1)
    transfer.copy_weights(first, second)
    x = digits.x_val[:8]
    assert features is not None
    assert np.allclose(first(x), second(x), atol=1e-6)
    assert [second.get_layer(f"hidden_{i}").trainable for i in range(3)] == [False, True, True]


def test_the_source_file_is_never_changed(digits, tmp_path):
    _, path = _source(digits, tmp_path)
    before = Path(path).read_bytes()
    model, _ = _built(digits, path, frozen=3)
    model.get_layer("hidden_0").set_weights(
        [np.zeros_like(w) for w in model.get_layer("hidden_0").get_weights()]
    )
    assert Path(path).read_bytes() == before


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("missing.keras", "transfer.source=missing.keras: no such file or folder"),
        ("notes.txt", "transfer.source=notes.txt: is not a Keras model"),
        ("empty", "transfer.source=empty: holds no .keras file"),
        ("models:/nope", "transfer.source=models:/nope: must be models:/NAME/VERSION"),
        ("models:/nope/1", "transfer.source=models:/nope/1: no such registered model version"),
    ],
)
def test_a_source_that_cannot_be_used_is_one_line(digits, tmp_path, monkeypatch, given, message):
    from search.transfer_source import resolve_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as err:
        resolve_source(given, f"sqlite:///{tmp_path / 'm.db'}", digits.spec)
    assert str(err.value).startswith(message), str(err.value)


def test_a_source_of_other_inputs_names_both_shapes(digits, tmp_path):
    import keras

    from search.transfer_source import resolve_source

    x = keras.Input((32,), name="features")
    h = keras.layers.Dense(8, name="hidden_0")(x)
    keras.Model(x, keras.layers.Dense(2)(h)).save(tmp_path / "other.keras")
    with pytest.raises(ConfigError) as err:
        resolve_source(str(tmp_path / "other.keras"), "sqlite:///unused.db", digits.spec)
    assert "its input is features (32,), this data's is features (64,)" in str(err.value)


def test_transfer_params_need_a_source(tmp_path, monkeypatch):
    from tests.helpers import check_inputs

    monkeypatch.chdir(tmp_path)
    code, lines = check_inputs(
        "dataset=digits", "search_space=keras_tuner", "++search_space.params.reuse_layers=2"
    )
    assert code == 2 and len(lines) == 1, lines
    assert "search_space.params.reuse_layers: only has an effect with transfer.source" in lines[0]


def test_a_missing_source_exits_2_before_ray(tmp_path, monkeypatch):
    import ray

    from tests.helpers import check_inputs

    monkeypatch.chdir(tmp_path)
    code, lines = check_inputs("dataset=digits", "transfer.source=gone.keras")
    assert code == 2 and lines == [
        "sweep: error: transfer.source=gone.keras: no such file or folder"
    ], lines
    assert not ray.is_initialized()


def _train(digits, path, cache, **params):
    from trainables.task import Objective
    from trainables.train import train

    seen: list[tuple[int, dict, object]] = []
    train(
        {"batch_size": 64, "learning_rate": 0.01, **params},
        digits,
        max_epochs=4,
        on_epoch_end=lambda e, m, model, last: seen.append((e, m, model)),
        objective=Objective("val_accuracy", "max"),
        seed=3,
        source=transfer.loader(Path(path).read_bytes()),
        cache=cache,
    )
    return seen


@pytest.mark.slow
def test_a_transfer_trial_trains_in_phases_and_the_cache_changes_nothing(digits, tmp_path):
    _, path = _source(digits, tmp_path)
    params = {"freeze_epochs": 2, "unfreeze_top": 1, "n_hidden": 1, "n_neurons": 8}
    cached = _train(digits, path, cache=True, **params)
    plain = _train(digits, path, cache=False, **params)
    assert [e for e, _, _ in cached] == [1, 2, 3, 4]
    assert [round(m["lr"], 6) for _, m, _ in cached] == [0.01, 0.01, 0.001, 0.001]
    for (_, a, _), (_, b, _) in zip(cached, plain, strict=True):
        assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 0.005, (a, b)
    whole = cached[0][2]  # the hook gets the whole model, not the part the cache trains
    assert whole.name == "transfer" and whole.get_layer("hidden_0").trainable is False
    assert cached[-1][2].get_layer("hidden_2").trainable is True
    assert cached[-1][2].get_layer("hidden_1").trainable is False


def test_the_cache_takes_a_bottoms_outputs_from_the_store_when_there(digits, tmp_path):
    """Keyed by the frozen block count (and the rows): what another trial computed for
    the same bottom is used as it is, without running the bottom again."""
    _, path = _source(digits, tmp_path)
    built, features = _built(digits, path, frozen=2, n_hidden=1, n_neurons=8)
    bottom, _ = transfer.split(built, features)
    store: dict[str, tuple] = {}
    dict_store = type("Store", (), {"get": lambda _, k: store.get(k), "put": store.__setitem__})()
    args = digits.fit_args(32, 0)
    first = transfer.cached(args, bottom, 2, dict_store)
    assert list(store) == [f"frozen=2 rows={len(digits.y_train)},{len(digits.y_val)}"]
    (key,) = store
    store[key] = (np.zeros_like(first["x"]), np.ones_like(first["validation_data"][0]))
    again = transfer.cached(args, bottom, 2, dict_store)
    assert not again["x"].any() and again["validation_data"][0].all()  # the stored arrays
    assert again["validation_data"][1] is digits.y_val and again["y"] is digits.y_train
    transfer.cached(args, bottom, 1, dict_store)
    assert len(store) == 2  # another bottom: computed and kept under its own key


def test_a_table_model_is_a_source_its_columns_preprocessing_reused(tmp_path):
    """A table model's input part (a layer per column: standardization, one-hot codes,
    blanks' indicators) is reused as a whole and frozen with the blocks above it; the
    split model equals the whole, and the cache runs on the per-column inputs."""
    from bench.tabular import cancer_table, options
    from search.transfer_source import resolve_source
    from trainables.data import load_dataset
    from trainables.model import build_model

    data = load_dataset(options(cancer_table(tmp_path), 0), 0)
    model = build_model({"n_hidden": 2, "n_neurons": 8}, _context(data))
    model.save(tmp_path / "table.keras")
    source = resolve_source(str(tmp_path / "table.keras"), "sqlite:///unused.db", data.spec)
    assert source.depth == 2
    built, features = transfer.build(
        transfer.load(str(tmp_path / "table.keras")), _p(n_hidden=1), _context(data), 2
    )
    x = {k: v[:16] for k, v in data.x_val.items()}
    bottom, top = transfer.split(built, features)
    assert np.allclose(top(bottom(x)), built(x), atol=1e-6)
    faster = transfer.cached(data.fit_args(32, 0), bottom, 2)
    assert faster is not None and faster["x"].shape == (len(data.y_train), 8)


def _context(data):
    from trainables.train import build_context

    return build_context(data.spec, 32, 5, 0)


@pytest.mark.slow
@pytest.mark.usefixtures("shared_ray")
def test_trials_share_a_frozen_bottoms_outputs_through_the_object_store(digits, tmp_path):
    """The first trial (a Ray task, gone when it ends) computes the bottom's outputs;
    a later one in another process trains on them and learns the same."""
    import ray

    from search.shared_features import shared_features

    _, path = _source(digits, tmp_path)
    params = {"freeze_epochs": 4, "n_hidden": 1, "n_neurons": 8}  # one frozen phase
    saved = Path(path).read_bytes()

    def trial(store) -> list[dict]:  # by value: Ray's worker cannot import this module
        from trainables.task import Objective
        from trainables.train import train

        seen: list[dict] = []
        train(
            {"batch_size": 64, "learning_rate": 0.01, **params},
            digits,
            max_epochs=4,
            on_epoch_end=lambda e, m, model, last: seen.append(m),
            objective=Objective("val_accuracy", "max"),
            seed=3,
            source=transfer.loader(saved),
            cache=store,
        )
        return seen

    with shared_features() as store:
        first = ray.get(ray.remote(trial).remote(store))
        expected = {"computed": 1, "reused": 0, "bytes": _bytes(digits, 16), "entries": 1}
        assert store.stats() == expected
        second = trial(store)
        assert store.stats()["reused"] == 1 and store.stats()["computed"] == 1
    assert [m["val_accuracy"] for m in first] == [m["val_accuracy"] for m in second]


def _bytes(digits, width: int) -> int:
    """Bytes of a bottom's float32 outputs of ``width`` on the training and validation rows."""
    return 4 * width * (len(digits.y_train) + len(digits.y_val))


@pytest.mark.slow
def test_a_resumed_transfer_trial_goes_on_from_its_checkpoint(digits, tmp_path):
    from trainables.task import Objective
    from trainables.train import train

    _, path = _source(digits, tmp_path)
    params = {"batch_size": 64, "freeze_epochs": 2, "n_hidden": 1, "n_neurons": 8}
    first = _train(digits, path, cache=True, **params)
    saved = tmp_path / "epoch2.keras"
    first[1][2].save(saved)
    seen: list[int] = []
    train(
        params,
        digits,
        max_epochs=4,
        on_epoch_end=lambda e, m, model, last: seen.append(e),
        objective=Objective("val_accuracy", "max"),
        seed=3,
        resume_from=str(saved),
        initial_epoch=2,
        source=transfer.loader(Path(path).read_bytes()),
    )
    assert seen == [3, 4]


@pytest.mark.slow
def test_a_refit_trains_from_the_source_in_the_trials_phases(digits, tmp_path):
    """final.refit with a source: train + val, the trial's phases up to its best epoch
    count; frozen blocks keep the source's weights, and the model stands alone."""
    from trainables.train import refit

    source, path = _source(digits, tmp_path)
    load = transfer.loader(Path(path).read_bytes())
    params = {"batch_size": 64, "n_hidden": 1, "n_neurons": 8, "freeze_epochs": 2}
    model, losses = refit(params, digits, epochs=3, max_epochs=4, seed=5, source=load)
    assert len(losses) == 3 and model.name == "transfer"
    assert all(layer.trainable for layer in model.layers if layer.name.startswith("hidden_"))
    frozen, _ = refit(
        {**params, "freeze_epochs": 4}, digits, epochs=2, max_epochs=4, seed=5, source=load
    )
    for a, b in zip(
        frozen.get_layer("hidden_0").get_weights(),
        source.get_layer("hidden_0").get_weights(),
        strict=True,
    ):
        assert np.array_equal(a, b)
    frozen.save(tmp_path / "alone.keras")
    assert transfer.load(str(tmp_path / "alone.keras")).predict(digits.x_val[:4]).shape == (4, 10)


def _register(digits, tmp_path, name: str) -> str:
    """An (untrained) MLP of ours logged and registered as a sweep's final phase does
    (LoggedModel, version, aliases), without a sweep; returns the tracking URI."""
    from search.finish import MODEL_REQUIREMENTS
    from tracking.models import keras_saver
    from tracking.recorder import SweepRecorder
    from trainables.evaluate import predict
    from trainables.serving import example_rows

    model, _ = _source(digits, tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    recorder = SweepRecorder(uri, name)
    recorder.start_sweep({"trials": 1}, {"sweep.name": name}, "")
    example = example_rows(digits)
    recorder.log_model(
        keras_saver(model, example, predict(model, example), MODEL_REQUIREMENTS), name
    )
    recorder.end_run(recorder.parent_run_id)
    return uri


def test_a_registered_model_is_a_source_by_version_or_alias(digits, tmp_path, monkeypatch):
    """What every model dnn-sweep registers keeps beside its SavedModel: its Keras model,
    reused layer by layer."""
    from search.transfer_source import resolve_source

    monkeypatch.chdir(tmp_path)
    uri = _register(digits, tmp_path, "src")
    for given in ("models:/src@champion", "models:/src/1", "models:/src@latest-sweep"):
        source = resolve_source(given, uri, digits.spec)
        assert source.resolved == "models:/src/1" and source.depth == 3, given
    (tmp_path / "saved.keras").write_bytes(source.saved)
    assert transfer.stack_of(transfer.load(str(tmp_path / "saved.keras"))).depth == 3
    with pytest.raises(ConfigError, match="models:/src/2: no such registered model version"):
        resolve_source("models:/src/2", uri, digits.spec)


@pytest.mark.slow
def test_a_sweep_reuses_a_registered_model_and_registers_one_that_stands_alone(
    digits, tmp_path, monkeypatch
):
    """Sweep B (digits 5-9, 20 images each) reuses a registered model by alias and
    re-checks its best: its parent records the source's version, its trials their
    transfer params, and the model it registers predicts without the source."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from dnn_sweep import run_sweep
    from tests.helpers import trial_runs
    from trainables.data import load_dataset

    monkeypatch.chdir(tmp_path)
    uri = _register(digits, tmp_path, "a")
    summary = run_sweep(
        [
            "dataset=digits",
            f"tracking.uri={uri}",
            "max_concurrent=2",
            "max_epochs=2",
            "ensemble.size=1",
            "time_budget_s=null",
            "name=b",
            "trials=2",
            "dataset.classes=[5,6,7,8,9]",
            "dataset.max_per_class=20",
            "search_space=transfer",
            "search_space.params.from_scratch=false",  # the arm that needs the source
            "search_space.params.freeze_epochs.high=1",
            "transfer.source=models:/a@champion",
            "recheck.top_k=1",
            "recheck.seeds=1",
            "final.refit=true",  # from the source too, on train + val
        ]
    )
    client = MlflowClient(uri)
    (parent,), children = trial_runs(client, "b")
    assert parent.data.params["transfer.resolved"] == "models:/a/1"
    assert parent.data.params["transfer.depth"] == "3"
    cache = {k: v for k, v in parent.data.metrics.items() if k.startswith("transfer_cache_")}
    assert set(cache) == {f"transfer_cache_{k}" for k in ("computed", "reused", "bytes", "entries")}
    assert cache["transfer_cache_entries"] <= min(3, cache["transfer_cache_computed"])
    trials = [c for c in children if c.data.tags.get("phase") is None]
    assert len(trials) == 2 and all("from_scratch" in c.data.params for c in trials)
    rechecks = client.search_runs([parent.info.experiment_id], "tags.phase = 'recheck'")
    assert len(rechecks) == 1
    assert parent.data.tags["refit.epochs"].isdigit() and "refit.error" not in parent.data.tags
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(summary.model_uri)
    data = load_dataset({"name": "digits", "classes": [5, 6, 7, 8, 9]}, 0)
    assert model.predict(data.x_val[:4].astype("float32")).shape == (4, 5)


def test_the_arms_are_compared_by_their_best_trials(monkeypatch):
    """Transfer vs from scratch: each arm's best trial, scored on the test set, with
    the sweep's own re-check reused where it holds the config."""
    from types import SimpleNamespace

    from search import arms
    from search.final_model import Ranked
    from search.recheck import Checked
    from trainables.task import Objective

    ranked = [
        Ranked("a", {"from_scratch": True}, 0.91, 3, None),
        Ranked("b", {"from_scratch": False}, 0.90, 4, None),
        Ranked("c", {"from_scratch": False}, 0.85, 2, None),
    ]
    assert {k: t.trial_id for k, t in arms.best_of_arms(ranked).items()} == {
        "scratch": "a",
        "transfer": "b",
    }
    assert arms.best_of_arms(ranked[1:]) == {}  # one arm only: nothing to compare
    monkeypatch.setattr(
        arms, "_test", lambda plan, t: {"accuracy": 0.8 if t.trial_id == "a" else 0.9}
    )
    settings = SimpleNamespace(recheck_top_k=1, recheck_seeds=2, seed=0, max_epochs=5)
    plan = SimpleNamespace(settings=settings, objective=Objective("val_accuracy", "max"))
    checked = [Checked(ranked[0], (0.88, 0.86), (3, 3))]
    asked = []

    def run_jobs(jobs):
        asked.extend(jobs)
        return [SimpleNamespace(job=j, error=None, best=0.89, best_epoch=4) for j in jobs]

    metrics, rows = arms.compare_arms(plan, ranked, checked, run_jobs)
    assert {j.trial_id for j in asked} == {"b"} and len(asked) == 2  # a's re-check reused
    assert metrics["arm_scratch_test_accuracy"] == 0.8
    assert metrics["arm_transfer_test_accuracy"] == 0.9
    assert metrics["arm_scratch_recheck_mean_val_accuracy"] == pytest.approx(0.87)
    assert metrics["arm_transfer_recheck_mean_val_accuracy"] == pytest.approx(0.89)
    assert [r["arm"] for r in rows] == ["scratch", "transfer"]


def test_a_missing_source_is_pretrained_first_when_the_sweep_says_how(
    digits, tmp_path, monkeypatch
):
    """transfer.pretrain: the overrides of a sweep that registers the source, run in the
    same tracking store and Ray folder when the source is not registered; not again
    once it is."""
    from types import SimpleNamespace

    from search.pretrain import ensure_source

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mine = tmp_path / "myconf" / "search_space"  # the user's own config folder (-cd)
    mine.mkdir(parents=True)
    (mine / "wide.yaml").write_text("name: wide\nparams:\n  n_hidden: 2\n  n_neurons: 64\n")
    settings = SimpleNamespace(
        transfer_source="models:/src@champion",
        transfer_pretrain=("name=src", "dataset=digits", "trials=1", "search_space=wide"),
        tracking_uri=uri,
        storage_path=str(tmp_path / "ray"),
        searchpath=(f"file://{mine.parent}",),
    )
    ran = []

    def run(source_settings, echo):
        ran.append(source_settings)
        _register(digits, tmp_path, "src")

    lines: list[str] = []
    assert ensure_source(settings, run, lines.append) is True
    (a,) = ran
    assert (a.name, a.trials, a.tracking_uri) == ("src", 1, uri)
    assert a.storage_path == str(tmp_path / "ray") and a.transfer_source is None
    assert a.space.name == "wide" and a.searchpath == settings.searchpath
    assert "not registered yet; training it first: sweep name=src" in lines[0]
    assert ensure_source(settings, run, lines.append) is False and len(ran) == 1
    for other, why in [
        ("models:/other@champion", "registers 'src', not 'other'"),
        ("models:/src/7", "not version 7"),
        ("models:/src@prod", "not @prod"),
    ]:  # refused before the pretrain sweep runs (it would register none of these)
        with pytest.raises(ConfigError, match=why):
            ensure_source(
                SimpleNamespace(**{**vars(settings), "transfer_source": other}),
                lambda s, echo: ran.append(s),
                lines.append,
            )
    assert len(ran) == 1
    fresh = SimpleNamespace(**{**vars(settings), "tracking_uri": f"sqlite:///{tmp_path}/b.db"})
    with pytest.raises(ConfigError, match="transfer.pretrain: its sweep registered no model"):
        ensure_source(fresh, lambda s, echo: None, lines.append)
