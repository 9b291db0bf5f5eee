"""Per-trial TensorFlow device setup: threads for the trial's CPUs, memory for its GPU share.

Ray's fractional GPUs only share scheduling: TensorFlow would still grab the whole card
(ray-project/ray#13680). Each trial therefore sets, before any TF op, either memory growth
(whole GPUs) or a logical-device memory limit matching its fraction.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass

# Keep this share of a fraction's memory for TF, the rest for CUDA context and fragmentation.
GPU_MEMORY_HEADROOM = 0.9


@dataclass(frozen=True)
class GpuPlan:
    """How a trial uses GPUs: hidden, whole cards with memory growth, or a memory cap."""

    use_gpu: bool
    memory_growth: bool
    memory_limit_mb: int | None


def plan_gpu(gpus: float, device_memory_mb: int | None) -> GpuPlan:
    """The GPU setup for a trial given ``gpus`` (Ray's per-trial share, may be fractional).

    - 0: GPUs hidden, the trial runs on CPU (never grabs a card another trial uses);
    - >= 1: whole cards, memory growth on;
    - a fraction f: a memory limit of f x the card's memory (x headroom), so four trials
      of 0.25 fit on one card; memory growth when the card's size is unknown.
    """
    if gpus < 0:
        raise ValueError(f"trial.gpus={gpus}: must be >= 0")
    if gpus == 0:
        return GpuPlan(use_gpu=False, memory_growth=False, memory_limit_mb=None)
    if gpus >= 1 or not device_memory_mb:
        return GpuPlan(use_gpu=True, memory_growth=True, memory_limit_mb=None)
    limit = math.floor(device_memory_mb * gpus * GPU_MEMORY_HEADROOM)
    return GpuPlan(use_gpu=True, memory_growth=False, memory_limit_mb=limit)


def gpu_memory_mb() -> int | None:
    """Total memory of the first visible GPU, from nvidia-smi (None when unknown)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def configure_devices(threads: int, gpus: float) -> dict[str, object]:
    """Apply threads and the GPU plan in this process; returns what was applied.

    Must run before TensorFlow executes its first op; in a reused worker the first
    call's setting stays (the trial slot has the same size).
    """
    import tensorflow as tf

    applied: dict[str, object] = {}
    threads = max(1, int(threads))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:
        pass  # context already initialized in this worker: keep its setting
    applied["threads"] = tf.config.threading.get_intra_op_parallelism_threads()
    physical = tf.config.list_physical_devices("GPU")
    if not physical:
        applied["gpu"] = "none"
        return applied
    plan = plan_gpu(gpus, gpu_memory_mb())
    try:
        if not plan.use_gpu:
            tf.config.set_visible_devices([], "GPU")
        elif plan.memory_limit_mb is not None:
            tf.config.set_logical_device_configuration(
                physical[0], [tf.config.LogicalDeviceConfiguration(plan.memory_limit_mb)]
            )
        else:
            for device in physical:
                tf.config.experimental.set_memory_growth(device, True)
    except RuntimeError:
        pass  # already initialized (reused worker): keep the first trial's setting
    applied["gpu"] = (
        "hidden"
        if not plan.use_gpu
        else f"limit {plan.memory_limit_mb} MB"
        if plan.memory_limit_mb
        else "memory growth"
    )
    return applied


def visible_gpus() -> int:
    """GPUs TensorFlow sees on this machine (0 without CUDA, or with a CPU-only build).
    Imports TensorFlow: ask only when a sweep wants GPUs."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))
