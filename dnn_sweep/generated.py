"""Tables in the docs that are generated from the code that holds their facts (the
params registry, the config schema): one writer and one reader of a marked section, so
a test can tell when a page has fallen behind its source."""

from __future__ import annotations

from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def section(name: str, page: Path = REFERENCE) -> str:
    """The text between ``name``'s markers on ``page`` (stripped)."""
    start, end = markers(name)
    text = page.read_text()
    return text[text.index(start) + len(start) : text.index(end)].strip()


def write_section(name: str, body: str, page: Path = REFERENCE) -> None:
    """Replace the text between ``name``'s markers on ``page`` with ``body``."""
    start, end = markers(name)
    head, rest = page.read_text().split(start, 1)
    tail = rest.split(end, 1)[1]
    page.write_text(f"{head}{start}\n{body}\n{end}{tail}")
