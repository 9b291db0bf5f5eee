"""Smoke run of the benchmark's short mode: every part runs and reports (no timing
assertions: the targets live in bench/, measured on a quiet machine)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_bench_short_mode_runs_and_reports(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--short",
            "--budget-min",
            "1",
            "--systems",
            "dnn_sweep,kt_random,optuna",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert [r["system"] for r in results] == ["dnn_sweep", "kt_random", "optuna"]
    for r in results:
        assert r["epochs"] > 0 and r["best_val_accuracy"] > 0.1, r["system"]
        assert r["peak_rss_mb"] > 50
        assert r["test_accuracy"] is not None
    ours = results[0]
    assert 0 < ours["orchestration_efficiency"] <= 1.0
    assert "| dnn_sweep |" in (out / "results.md").read_text()
    assert (out / "anytime.png").stat().st_size > 1000
