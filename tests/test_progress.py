"""The progress view: plain periodic lines off a terminal, a live panel on one, and an
estimate of the time left."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from search.progress import ProgressCallback, SweepProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def trial(tid: str, finished: bool = False, **config):
    return SimpleNamespace(
        trial_id=tid,
        config=config,
        last_result={"trial_finished": finished},
        error_file=None,  # Tune's error file, where a failed trial's errors go
        get_error=lambda: None,
    )


def test_eta_uses_the_rate_so_far_and_the_time_budget():
    p = SweepProgress(total=10, max_epochs=5, started=0.0)
    assert p.eta(50.0) is None  # nothing ended yet: no rate
    p.counts["completed"] = 2
    assert p.eta(100.0) == pytest.approx(400.0)  # 50 s per trial, 8 left
    p.budget_s = 300.0
    assert p.eta(100.0) == pytest.approx(200.0)  # the budget ends first
    assert SweepProgress(total=4, max_epochs=1, budget_s=60.0).eta(10.0) == pytest.approx(50.0)


def test_plain_lines_every_interval_and_when_a_trial_ends():
    out, clock = io.StringIO(), FakeClock()
    cb = ProgressCallback(4, interval=15.0, stream=out, clock=clock, max_epochs=3)
    assert not cb.live_view  # a StringIO is not a terminal
    a, b = trial("a", n_hidden=2), trial("b", finished=True, n_hidden=5)
    cb.on_trial_start(0, [], a)  # first status line right away
    cb.on_trial_start(0, [], b)
    clock.now = 5.0
    cb.on_trial_result(0, [], a, {"val_accuracy": 0.81, "epoch": 1})
    cb.on_step_end(0, [])  # within the interval: nothing
    clock.now = 10.0
    cb.on_trial_result(0, [], b, {"val_accuracy": 0.93, "epoch": 3})
    assert len(out.getvalue().splitlines()) == 1
    clock.now = 70.0
    cb.on_trial_complete(0, [], b)  # a trial ended: a line now
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    last = lines[-1]
    assert last.startswith("[1:10, ~3:30 left] trials 1/4 ended (1 completed")
    assert "1 running" in last
    assert "best val_accuracy 0.9300 trial-b: n_hidden=5" in last
    clock.now = 86.0
    cb.on_step_end(0, [])
    assert len(out.getvalue().splitlines()) == 3
    assert "\x1b[" not in out.getvalue()  # no terminal control codes in logs


def test_a_failed_trial_is_one_line_naming_why(tmp_path):
    """Said by the driver (the workers' output is not forwarded): the exception a task
    error ends with, or why Ray lost the trial's actor (a lost node)."""
    errors = tmp_path / "error.txt"
    errors.write_text(
        "Failure # 1 (occurred at 2026-12-07_15-37-09)\n"
        "\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=7654, ip=192.0.2.2)\n"
        '  File "/work/trainables/train.py", line 98, in on_epoch_end\n'
        "    raise DivergedError(\n"
        "trainables.train.DivergedError: loss diverged at epoch 1: loss=nan\n"
    )
    out = io.StringIO()
    cb = ProgressCallback(2, stream=out, clock=FakeClock())
    a = trial("a")
    a.error_file = str(errors)
    cb.on_trial_recover(0, [], a)
    with errors.open("a") as f:
        f.write(
            "Failure # 2 (occurred at 2026-12-07_15-38-00)\n"
            "The actor died unexpectedly before finishing this task.\n"
            "\tclass_name: ImplicitFunc\n"
            "The actor died because its node has died. Node Id: 1a2b\n"
        )
    cb.on_trial_error(0, [], a)
    said = [ln for ln in out.getvalue().splitlines() if not ln.startswith("[")]
    assert said == [
        "  trial-a failed, retrying: DivergedError: loss diverged at epoch 1: loss=nan",
        "  trial-a failed: The actor died because its node has died. Node Id: 1a2b",
    ]


def test_live_panel_shows_running_trials_best_and_time_left():
    out, clock = io.StringIO(), FakeClock()
    cb = ProgressCallback(3, stream=out, clock=clock, max_epochs=10, budget_s=600, live=True)
    a, b = trial("a", lr=0.01), trial("b", lr=0.002)
    cb.on_trial_start(0, [], a)
    cb.on_trial_start(0, [], b)
    clock.now = 30.0
    cb.on_trial_result(0, [], a, {"val_accuracy": 0.8765, "epoch": 4})
    cb.on_trial_error(0, [], b)
    cb.on_experiment_end([])
    text = out.getvalue()
    assert "\x1b[" in text  # drawn with terminal control codes, redrawn in place
    pieces = ("trial-a", "4/10", "0.8765", "lr=0.01", "1 failed", "1 running", "left")
    for piece in (*pieces, "trial-b failed: trial failed (no error recorded)"):
        assert piece in text, piece
    assert "best" in text and cb._live is None  # closed at the end


def test_pickles_without_its_stream_and_live_view():
    import pickle

    cb = ProgressCallback(2, stream=io.StringIO(), live=True)
    cb.on_trial_start(0, [], trial("a"))
    restored = pickle.loads(pickle.dumps(cb))
    assert restored.state.total == 2 and "trial-a" in restored.state.running
    cb.close()
