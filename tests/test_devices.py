"""Per-trial GPU setup logic: fractions become memory limits, whole GPUs memory growth."""

from __future__ import annotations

import pytest

from trainables.devices import GPU_MEMORY_HEADROOM, GpuPlan, plan_gpu


def test_no_gpu_hides_the_cards():
    assert plan_gpu(0, 24000) == GpuPlan(use_gpu=False, memory_growth=False, memory_limit_mb=None)


def test_whole_gpus_grow_memory():
    assert plan_gpu(1, 24000) == GpuPlan(use_gpu=True, memory_growth=True, memory_limit_mb=None)
    assert plan_gpu(2, 24000).memory_growth


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.2])
def test_fractions_get_their_share_of_the_card(fraction):
    plan = plan_gpu(fraction, 80000)
    assert plan.use_gpu and not plan.memory_growth
    assert plan.memory_limit_mb == int(80000 * fraction * GPU_MEMORY_HEADROOM)
    assert plan.memory_limit_mb * round(1 / fraction) <= 80000  # the trials fit together


def test_unknown_card_size_falls_back_to_memory_growth():
    assert plan_gpu(0.25, None).memory_growth


def test_negative_share_is_refused():
    with pytest.raises(ValueError, match="trial.gpus"):
        plan_gpu(-1, 1000)
