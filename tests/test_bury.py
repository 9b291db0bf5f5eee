"""A finished trial's objects are freed off its thread, after the thread has ended."""

from __future__ import annotations

import gc
import threading
import time
import weakref

from search.tune_trial import _bury


class _State:
    """Stands in for a trial's model and frames."""


def test_buried_objects_outlive_the_trial_thread_then_go():
    refs: list[weakref.ref] = []
    release = threading.Event()

    def trial() -> None:
        state = _State()
        refs.append(weakref.ref(state))
        _bury(state)
        del state
        release.wait(5)  # the trial thread is still running: nothing may be freed yet

    thread = threading.Thread(target=trial)
    thread.start()
    deadline = time.monotonic() + 5
    while not refs and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert refs[0]() is not None  # held for the running trial thread
    release.set()
    thread.join()
    deadline = time.monotonic() + 5
    while refs[0]() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert refs[0]() is None  # freed by the background thread once the trial ended


def test_on_the_main_thread_nothing_is_held():
    state = _State()
    ref = weakref.ref(state)
    _bury(state)
    del state
    gc.collect()
    assert ref() is None
