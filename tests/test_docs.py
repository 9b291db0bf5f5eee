"""The docs (README.md and docs/*.md) document every hyperparameter and config option,
link only to files and headings that exist, and cite the texts by book, chapter and
title, never by the number of a file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dnn_sweep.generated import section
from tests.conftest import CONF, ROOT
from trainables.params import PARAMS, TABLE, docs_table

README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^()\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
# A text cited by its file's number: "001", "000/003", "(004)", seeds/00...; not 0.001.
FILE_NUMBER = re.compile(r"(?<![\w.])00[0-4](?!\w|\.\d)|seeds/00")


def _prose(text: str) -> str:
    """The text without code blocks and inline code (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        slug = _slug(heading)
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def test_docs_pages_exist():
    names = {page.name for page in PAGES[1:]}
    assert {
        "search-spaces.md",
        "data.md",
        "results.md",
        "cluster.md",
        "reference.md",
        "design.md",
        "development.md",
    } <= names
    readme = README.read_text()
    for name in names:
        assert f"(docs/{name})" in readme, f"README's Documentation list lacks docs/{name}"


def test_reference_params_table_is_current():
    assert section(TABLE) == docs_table(), "run: python -m trainables.params --write"


def test_reference_config_table_is_current():
    from search import schema

    assert section(schema.TABLE) == schema.docs_table(), "run: python -m search.schema --write"


def test_docs_name_every_shipped_option():
    """Every option of every group: the files under conf/ and the schema's own."""
    from search.schema import OPTIONS

    docs = "\n".join(page.read_text() for page in PAGES)
    options = {
        (g, p.stem)
        for g in ("dataset", "search_space", "experiment")
        for p in (CONF / g).glob("*.yaml")
    }
    options |= {(g, name) for g, names in OPTIONS.items() for name in names}
    assert len(options) > 25
    for group, option in sorted(options):
        named = f"`{option}`" in docs or f"`{group}={option}`" in docs
        assert named, f"{group}={option} is not documented"


def test_every_param_is_in_exactly_one_group():
    from trainables.params import GROUPS

    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(PARAMS)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page: Path):
    broken = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_texts_are_cited_by_title_not_file_number():
    found = []
    for page in PAGES:
        for n, line in enumerate(page.read_text().splitlines(), 1):
            if FILE_NUMBER.search(line):
                found.append(f"{page.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    for name, rule in PARAMS.items():
        if FILE_NUMBER.search(rule.source):
            found.append(f"trainables/params.py {name}: source {rule.source!r}")
    for config in sorted(CONF.rglob("*.yaml")):
        for n, line in enumerate(config.read_text().splitlines(), 1):
            comment = line.partition("#")[2]
            if FILE_NUMBER.search(comment):
                found.append(f"{config.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    assert not found, "cite the texts by book and chapter (docs/reference.md, Sources):\n" + (
        "\n".join(found)
    )


def test_every_code_block_is_run_or_says_why():
    """Each docs-test marker is one the runner knows and is used by the block after it;
    a skipped block gives its reason, a server its port, a file its path."""
    from tests.docs_blocks import steps

    for page in PAGES:
        marked = [s for s in steps(page) if s.kind in ("skip", "output", "file", "serves")]
        assert len(marked) == page.read_text().count("<!-- docs-test:"), page.name
        for step in marked:
            if step.kind == "serves":
                assert step.argument.isdigit(), step.where
            elif step.kind in ("skip", "file"):
                assert step.argument, f"{step.where}: {step.kind} needs its reason or path"


def test_an_output_is_checked_for_its_shape_not_its_numbers():
    from tests.docs_blocks import unmatched

    doc = [
        "Sweep 'cancer': binary on cancer (table of 30 numeric + 1 categorical columns), "
        "MLflow run 8941ac93bb554e65922851f57cd9d8be at sqlite:////home/me/work/mlflow.db",
        "[0:45, ~0:00 left] trials 8/8 ended (3 completed, 5 pruned, 0 failed), 0 running | "
        "best val_auc 0.9987 trial-7e564d53: n_hidden=4 activation=swish",
        "Model:  models:/cancer/1 (TensorFlow SavedModel, registered)",
    ]
    printed = [
        "Sweep 'cancer': binary on cancer (table of 30 numeric + 1 categorical columns), "
        "MLflow run 0123456789abcdef0123456789abcdef at sqlite:////home/me/work/mlflow.db",
        "  task=auto: binary",
        "[0:51, ~0:00 left] trials 8/8 ended (4 completed, 4 pruned, 0 failed), 0 running | "
        "best val_auc 0.9961 trial-0a1b2c3d: n_hidden=2 n_neurons_0=40 activation=elu",
        "Model:  models:/cancer/2 (TensorFlow SavedModel, registered)",
    ]
    assert unmatched(doc, printed) is None
    assert unmatched(doc, [printed[0], printed[3], printed[2]]) == doc[2]  # order counts
    renamed = [line.replace("cancer", "digits") for line in printed]
    assert unmatched(doc, renamed) == doc[0]
    assert unmatched(doc, [*printed[:3], "Model:  runs:/x/model"]) == doc[2]
