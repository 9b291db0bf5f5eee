"""The README documents every hyperparameter and config group that exists."""

from __future__ import annotations

from tests.conftest import CONF, ROOT
from trainables.params import docs_table


def test_readme_params_table_is_current():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- params-table:start -->") + len("<!-- params-table:start -->")
    end = readme.index("<!-- params-table:end -->")
    assert readme[start:end].strip() == docs_table(), "run: python -m trainables.params"


def test_readme_names_every_shipped_option():
    readme = (ROOT / "README.md").read_text()
    for group in (
        "dataset",
        "search_space",
        "searcher",
        "scheduler",
        "tracking",
        "cluster",
        "experiment",
    ):
        for option in (CONF / group).glob("*.yaml"):
            assert f"`{option.stem}`" in readme, f"{group}={option.stem} is not documented"


def test_every_param_is_in_exactly_one_group():
    from trainables.params import GROUPS, PARAMS

    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(PARAMS)
