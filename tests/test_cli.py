"""The `sweep` command line: help, config printing, and bad input -> exit 2, one line."""

from __future__ import annotations

import contextlib
import io
import subprocess
from pathlib import Path

import pytest

from tests.helpers import check_inputs


def run(sweep_bin, cli_env, tmp_path, *args, timeout=120):
    return subprocess.run(
        [sweep_bin, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env,
    )


@pytest.mark.slow
def test_help_lists_groups(sweep_bin, cli_env, tmp_path):
    proc = run(sweep_bin, cli_env, tmp_path, "--help")
    assert proc.returncode == 0
    for group in ("dataset:", "search_space:", "searcher:", "scheduler:", "tracking:"):
        assert group in proc.stdout


@pytest.mark.slow
def test_cfg_job_shows_overrides(sweep_bin, cli_env, tmp_path):
    proc = run(
        sweep_bin,
        cli_env,
        tmp_path,
        "--cfg",
        "job",
        "dataset=digits",
        "search_space=keras_tuner",
        "trials=8",
        "name=demo",
        "tracking.uri=sqlite:///demo.db",
    )
    assert proc.returncode == 0, proc.stderr
    import yaml

    cfg = yaml.safe_load(proc.stdout)
    assert cfg["trials"] == 8 and cfg["name"] == "demo"
    assert cfg["dataset"]["name"] == "digits"
    assert cfg["search_space"]["name"] == "keras_tuner"
    assert cfg["tracking"]["uri"] == "sqlite:///demo.db"
    assert {"max_epochs", "max_concurrent", "seed"} <= set(cfg)


BAD_INPUTS = [
    (["trials=0"], "trials="),
    (["dataset=mnist"], "dataset=mnist: unknown option; allowed are arrays, digits, fashion_mnist"),
    (["searcher=grid"], "searcher=grid"),
    (["experiment=nope"], "experiment=nope: unknown option; allowed are deep_20x100"),
    (["trails=3"], "trails: unknown config key; did you mean trials?"),
    (["dataset.validaton_size=3"], "dataset.validaton_size: unknown config key; did you mean"),
    (["max_epochs=-1"], "max_epochs="),
    (["max_concurrent=0"], "max_concurrent="),
    (["search_space.params.activation=sigmoidal"], "search_space.params.activation"),
    (["search_space.params.n_neurons.low=300"], "search_space.params.n_neurons"),
    (["search_space.params.initializer=glorot_sideways"], "search_space.params.initializer"),
    (["search_space.params.optimizer.choices=[sgd,adamx]"], "search_space.params.optimizer"),
    (["++search_space.params.lr_schedule=warp"], "search_space.params.lr_schedule"),
    (["search_space.params.learning_rate.low=0"], "search_space.params.learning_rate"),
    (["search_space.params.n_hidden.low=0.5"], "search_space.params.n_hidden.low"),
    (["search_space.params.optimizer.choices=[]"], "search_space.params.optimizer.choices"),
    (
        ["++search_space.params.momentum={type: float, low: 0.1, high: 0.9, when: {solver: sgd}}"],
        "search_space.params.momentum.when.solver",
    ),
    (["++search_space.params.huber_delta=2.0"], "search_space.params.huber_delta"),
    (["++search_space.params.embedding_dim=4"], "search_space.params.embedding_dim"),
    (["trials=-3"], "trials="),
    (["dataset=fashion_mnist", "dataset.path=/nonexistent/fm"], "dataset.path="),
    (["tracking.uri=http://127.0.0.1:9"], "tracking.uri="),
    (["cluster=remote", "cluster.address=127.0.0.1:9"], "cluster.address="),
    (["trial.gpus=-1"], "trial.gpus="),
    (["trial.gpus=1"], "trial.gpus=1: TensorFlow sees no GPU on this machine"),
    (["trial.gpus=0.25"], "trial.gpus=0.25: TensorFlow sees no GPU on this machine"),
    (["checkpoint.frequency=0"], "checkpoint.frequency="),
    (["ensemble.size=0"], "ensemble.size="),
    (["ensemble.candidates=-2"], "ensemble.candidates="),
    (["recheck.top_k=-1"], "recheck.top_k=-1: must be an integer >= 0"),
    (["recheck.seeds=0"], "recheck.seeds=0: must be an integer > 0"),
    (["final.refit=maybe"], "final.refit='maybe': must be true or false"),
    (["dataset.split_seed=-1"], "dataset.split_seed="),
    (["resume=true", "name=never-ran"], "resume=true name=never-ran"),
    (["task=ordinal"], "task='ordinal': allowed are auto, multiclass"),
    (["objective.metric=val_rmse"], "objective.metric=val_rmse: task multiclass reports"),
    (["objective.metric=val_accuracy", "objective.mode=min"], "objective.mode=min"),
    # the schema's checks (search/schema.py), each naming the full key
    (["trial.cpus=abc"], "trial.cpus='abc': must be an integer"),
    (["scheduler.reduction_factor=1"], "scheduler.reduction_factor=1: must be a number > 1"),
    (["searcher=cmaes", "searcher.sigma0=-1"], "searcher.sigma0=-1: must be a number > 0"),
    (["searcher=qmc", "searcher.qmc_type=lhs"], "searcher.qmc_type='lhs': allowed are sobol"),
    (["lr_find.iterations=5"], "lr_find.iterations=5: must be an integer >= 20"),
    (["cluster.gpu_wait_s=0"], "cluster.gpu_wait_s=0: must be a number > 0"),
    (["pareto.tolerance=-1"], "pareto.tolerance=-1: must be a number >= 0"),
    (["objective.mode=up"], "objective.mode='up': allowed are min, max"),
    (["resume=maybe"], "resume='maybe': must be true or false"),
    (["objective.metric=accuracy"], "objective.metric='accuracy'"),
    (["--config-dir=/nonexistent/conf"], "--config-dir=/nonexistent/conf: no such folder"),
]


@pytest.mark.parametrize(("overrides", "key"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line(tmp_path, monkeypatch, overrides, key):
    """In-process, the steps `sweep` takes before Ray starts (the command line's own path
    is covered below, once per kind of error)."""
    import ray

    if "sees no GPU" in key:
        from trainables.devices import visible_gpus

        if visible_gpus():
            pytest.skip("this machine has a GPU")
    monkeypatch.chdir(tmp_path)
    code, lines = check_inputs("dataset=digits", "search_space=keras_tuner", *overrides)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("sweep: error: ") and key in lines[0], lines[0]
    assert "Traceback" not in lines[0] and not ray.is_initialized()
    assert not list(tmp_path.iterdir())  # no MLflow file, no Ray folder, nothing


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["dataset=mnist"], "dataset=mnist: unknown option"),  # Hydra's composition
        (["trials=0"], "trials="),  # the settings
        (["dataset=table", "dataset.path=no.csv", "dataset.target=y"], "no.csv: no such file"),
        # TensorFlow's own CUDA-probe lines (fd 2, at its first import) must not show
        (["trial.gpus=1"], "trial.gpus=1: TensorFlow sees no GPU on this machine"),
    ],
)
def test_the_command_itself_exits_2_with_one_line(sweep_bin, cli_env, tmp_path, overrides, key):
    if "sees no GPU" in key:
        from trainables.devices import visible_gpus

        if visible_gpus():
            pytest.skip("this machine has a GPU")
    args = ["dataset=digits", "search_space=keras_tuner", *overrides]
    proc = run(sweep_bin, cli_env, tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sweep: error: ") and key in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "ray_results").exists()  # refused before Ray started


def test_malformed_dataset_file_exits_2_naming_the_file(tmp_path, monkeypatch):
    """An IDX file that is not one (here: truncated) is refused before Ray starts."""
    import gzip
    import shutil

    import ray

    data = tmp_path / "fm"
    data.mkdir()
    source = Path("/usr/share/datasets/fashion-mnist")
    for f in source.glob("*-ubyte.gz"):
        shutil.copy(f, data / f.name)
    broken = data / "train-images-idx3-ubyte.gz"
    with gzip.open(source / broken.name) as f:
        head = f.read(16 + 28 * 28 * 100)  # the header of 60k images, then 100 of them
    broken.write_bytes(gzip.compress(head))
    monkeypatch.chdir(tmp_path)
    code, lines = check_inputs("dataset=fashion_mnist", f"dataset.path={data}")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("sweep: error: "), lines
    assert str(broken) in lines[0] and "IDX" in lines[0]
    assert not ray.is_initialized() and not (tmp_path / "ray_results").exists()


@pytest.mark.slow
def test_budget_too_short_for_any_epoch_says_so_in_one_line(sweep_bin, cli_env, tmp_path):
    proc = run(
        sweep_bin,
        cli_env,
        tmp_path,
        "dataset=digits",
        "search_space=keras_tuner",
        "time_budget_s=1",
        "tracking.uri=sqlite:///short.db",
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweep: error: no trial finished an epoch")
    assert "time_budget_s=1" in lines[0] and "Traceback" not in proc.stderr


@pytest.fixture
def bad_data(tmp_path):
    """Files a user might point a sweep at, each wrong in one way."""
    import numpy as np
    from PIL import Image

    (tmp_path / "t.csv").write_text("size,color,label\n" + "1.5,red,a\n2.5,blue,b\n3.0,red,a\n" * 4)
    np.savez(tmp_path / "no_keys.npz", features=np.zeros((4, 2)), labels=np.zeros(4))
    (tmp_path / "one" / "cat").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "one" / "cat" / "a.png")
    return tmp_path


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (
            ["dataset=table", "dataset.path=missing.csv", "dataset.target=label"],
            "dataset.path=missing.csv: no such file",
        ),
        (
            ["dataset=table", "dataset.path=t.csv", "dataset.target=price"],
            "dataset.target=price: no such column in t.csv; columns are size, color, label",
        ),
        (["dataset=table", "dataset.path=t.csv"], "dataset.target: name the column to predict"),
        (
            [
                "dataset=table",
                "dataset.path=t.csv",
                "dataset.target=label",
                "dataset.features=[size,weight]",
            ],
            "dataset.features=weight: no such column",
        ),
        (
            ["dataset=table", "dataset.path=t.csv", "dataset.target=label", "task=regression"],
            "task=regression: target 'label' is not numeric",
        ),
        (
            [
                "dataset=table",
                "dataset.path=t.csv",
                "dataset.target=label",
                "objective.metric=val_rmse",
            ],
            "objective.metric=val_rmse: task binary reports",
        ),
        (["dataset=images", "dataset.path=one"], "one: needs a folder per class, at least 2"),
        (
            ["dataset=arrays", "dataset.path=no_keys.npz"],
            "holds features, labels; expected x and y, or x_train and y_train",
        ),
        (["dataset=digits", "dataset.streaming=true"], "dataset.streaming: unknown config key"),
        (
            [
                "dataset=table",
                "dataset.path=t.csv",
                "dataset.target=label",
                "dataset.streaming=yes",
            ],
            "dataset.streaming='yes': allowed are auto, true, false",
        ),
    ],
)
def test_bad_data_exits_2_with_one_line(bad_data, monkeypatch, overrides, key):
    import ray

    monkeypatch.chdir(bad_data)
    code, lines = check_inputs("search_space=keras_tuner", *overrides)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("sweep: error: ") and key in lines[0], lines[0]
    assert not ray.is_initialized()


@pytest.mark.parametrize("record", [None, "127.0.0.9:6379"], ids=["no-record", "stale-record"])
def test_a_cluster_that_cannot_be_joined_leaves_no_records(tmp_path, monkeypatch, record):
    """`cluster.address=auto` with no cluster running fails before Ray is asked (whose
    join would retry for minutes) and before any MLflow record or file exists, whether
    Ray's temp folder records no cluster or one that is gone."""
    import ray

    from search.cli import _guarded
    from search.config import compose_command_line, to_plain
    from search.driver import run_sweep
    from search.settings import load_settings

    ray_tmp = tmp_path / "raytmp"
    if record is not None:
        (ray_tmp / "ray").mkdir(parents=True)
        (ray_tmp / "ray" / "ray_current_cluster").write_text(record)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("RAY_TMPDIR", str(ray_tmp))
    monkeypatch.setenv("RAY_ADDRESS", "")
    args = ["dataset=digits", "cluster=remote", "cluster.address=auto", "trials=1"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
        _guarded(lambda: run_sweep(load_settings(to_plain(compose_command_line(args)))))
    assert stop.value.code == 2
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    assert len(lines) == 1 and "cluster.address=auto: no Ray cluster" in lines[0], lines
    assert not list(work.iterdir()) and not ray.is_initialized()


def test_a_sweep_folder_of_another_version_is_refused_by_resume(tmp_path, monkeypatch):
    """What Tune pickled into an older sweep's folder may name code that has moved:
    resume refuses it in one line, before Ray starts, and says how to build on it."""
    import json

    import ray

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "ray_results" / "old-20260101-000000"
    folder.mkdir(parents=True)
    (folder / "dnn_sweep.json").write_text(json.dumps({"config": {}, "lr_suggestion": None}))
    code, lines = check_inputs("dataset=digits", "resume=true", "name=old")
    assert code == 2 and len(lines) == 1, lines
    assert "resume=true name=old:" in lines[0] and "state format 1" in lines[0]
    assert "warm_start=old" in lines[0] and not ray.is_initialized()


def test_a_final_phase_error_after_the_trials_ran_exits_1_saying_how_to_finish(monkeypatch, capsys):
    """Bad input exits 2 ("nothing ran"); the same error met by the final phase, after
    trials ran, is a sweep to finish: exit 1, one line naming `resume=true`."""
    from types import SimpleNamespace

    import search.driver as driver
    from dnn_sweep.errors import SweepError, TrackingError
    from search.cli import _guarded

    def broken(*args, **kwargs):
        raise TrackingError("tracking.uri=http://h:5000: no MLflow server answers there")

    monkeypatch.setattr(driver, "finish", broken)
    plan = SimpleNamespace(settings=SimpleNamespace(name="s"))
    with pytest.raises(SweepError) as err:
        driver._finished_phase(plan, None, (None, None, 0.0, 0.0), print)
    assert "after its trials ran" in str(err.value) and "resume=true name=s" in str(err.value)
    with pytest.raises(SystemExit) as stop:
        _guarded(lambda: driver._finished_phase(plan, None, (None, None, 0.0, 0.0), print))
    assert stop.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("sweep: error: tracking.uri=http://h:5000: no MLflow server")
