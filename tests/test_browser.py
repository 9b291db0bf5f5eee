"""The MLflow UI, tested as a user would: a real `mlflow server` on loopback over the
records of a tiny sweep, driven by headless Chromium (Debian's /usr/bin/chromium through
Playwright). Screenshots go to test-artifacts/browser/ (or $DNN_SWEEP_TEST_ARTIFACTS)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from pathlib import Path

import pytest

from tests.conftest import ACCEPTANCE_TRIALS, ROOT
from tests.helpers import mlflow_server, trial_runs

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("DNN_SWEEP_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def ui(finished_sweep):
    """(server URL, experiment id, parent run, child runs) of the acceptance sweep."""
    from mlflow.tracking import MlflowClient

    work, _ = finished_sweep
    backend = f"sqlite:///{work / 'acc.db'}"
    (parent,), children = trial_runs(MlflowClient(backend), "acc")
    with mlflow_server(work, backend) as url:
        yield url, parent.info.experiment_id, parent, children


@pytest.fixture(scope="module")
def page():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install chromium (scripts/setup.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def test_experiment_page_shows_the_parent_with_its_nested_trials(ui, page, shots):
    url, exp_id, parent, children = ui
    page.goto(f"{url}/#/experiments/{exp_id}/runs")
    page.get_by_text(parent.info.run_name, exact=True).first.wait_for()
    page.screenshot(path=str(shots / "1-experiment-collapsed.png"), full_page=True)
    # the parent row folds its trials; its run-name cell holds the expander
    if not page.get_by_text(children[0].info.run_name, exact=True).count():
        page.locator('button[data-component-id*="runnamecellrenderer"]').first.click()
    for child in children:
        page.get_by_text(child.info.run_name, exact=True).first.wait_for()
    page.screenshot(path=str(shots / "2-experiment-parent-and-trials.png"), full_page=True)
    body = page.inner_text("body")
    assert parent.info.run_name in body
    assert sum(c.info.run_name in body for c in children) == ACCEPTANCE_TRIALS


def test_compare_two_trials_with_their_val_accuracy_charts(ui, page, shots):
    url, exp_id, _, children = ui
    a, b = children[:2]
    query = urllib.parse.urlencode(
        {
            "runs": json.dumps([a.info.run_id, b.info.run_id]),
            "experiments": json.dumps([exp_id]),
        }
    )
    page.goto(f"{url}/#/compare-runs?{query}")
    page.get_by_text("val_accuracy").first.wait_for()
    page.get_by_text(a.info.run_name).first.wait_for()
    page.get_by_text(b.info.run_name).first.wait_for()
    page.screenshot(path=str(shots / "3-compare-two-trials.png"), full_page=True)
    body = page.inner_text("body")
    for piece in ("val_accuracy", "n_hidden", "learning_rate", a.info.run_name, b.info.run_name):
        assert piece in body, piece
    # from the comparison, open the val_accuracy chart of both trials (a user's click)
    page.locator('a[href*="metric=%22val_accuracy%22"]').first.click()
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length >= 2"
    )
    page.screenshot(path=str(shots / "4-val-accuracy-chart-of-two-trials.png"), full_page=True)
    legend = page.inner_text("body")
    assert f"{a.info.run_name} (val_accuracy)" in legend
    assert f"{b.info.run_name} (val_accuracy)" in legend


def test_parent_run_shows_system_metrics(ui, page, shots):
    url, exp_id, parent, _ = ui
    page.goto(f"{url}/#/experiments/{exp_id}/runs/{parent.info.run_id}/system-metrics")
    page.get_by_text("cpu_utilization_percentage").first.wait_for()
    page.locator(".js-plotly-plot, canvas, svg.recharts-surface").first.wait_for()
    page.screenshot(path=str(shots / "5-parent-system-metrics.png"), full_page=True)
    body = page.inner_text("body")
    for metric in ("cpu_utilization_percentage", "system_memory_usage_megabytes"):
        assert metric in body, metric


def test_runs_table_shows_the_parents_dataset_source_and_models(ui, page, shots):
    """MLflow 3's runs table: the parent's Dataset (digits, per split), Source (the
    `sweep` command) and Models (its LoggedModel, registered as acc v1) columns."""
    url, exp_id, parent, _ = ui
    page.goto(f"{url}/#/experiments/{exp_id}/runs")
    page.get_by_text(parent.info.run_name, exact=True).first.wait_for()
    page.screenshot(path=str(shots / "6-runs-table-dataset-source-models.png"), full_page=True)
    headers = page.locator('[role="columnheader"]').all_inner_texts()
    for column in ("Dataset", "Source", "Models"):
        assert any(column in h for h in headers), (column, headers)
    # the grid draws a row in parts (pinned name, scrolled columns): the parent is row 0
    cells = " ".join(page.locator('[role="row"][row-index="0"]').all_inner_texts())
    assert parent.info.run_name in cells and "digits" in cells and "sweep" in cells, cells
    assert "model" in cells or "acc" in cells, cells


def test_the_printed_link_opens_the_model_training_view(finished_sweep, ui, page, shots):
    """The summary's "Compare runs" link opens the sweep's runs in MLflow 3's
    model-training view (its sidebar: Runs, Models, Model registry), not the GenAI view
    (Overview, Judges) the UI shows an experiment in by default."""
    url, exp_id, parent, _ = ui
    (line,) = [ln for ln in finished_sweep[1].splitlines() if ln.startswith("Compare runs:")]
    fragment = line[line.index("#/") :]
    assert fragment.startswith(f"#/experiments/{exp_id}/"), line
    page.goto(f"{url}/{fragment}")
    page.get_by_text(parent.info.run_name, exact=True).first.wait_for()
    page.screenshot(path=str(shots / "7-printed-link-model-training-view.png"), full_page=True)
    body = page.inner_text("body")
    assert "Model registry" in body and "Judges" not in body, body[:400]
