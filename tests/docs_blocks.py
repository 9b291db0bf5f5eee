"""The code blocks of README.md and docs/*.md, as the docs test runs them.

A page is a sequence of steps. Fenced ``bash``/``sh``/``python`` blocks are run; a fenced
block whose first line starts with ``$ `` is a transcript (each ``$`` command is run and
the lines under it are its expected output). An HTML comment right before a fence says
what else to do with it (a reader of the rendered page sees none of this):

- ``<!-- docs-test: skip REASON -->``: not run here (AWS, a GPU, a 10-minute sweep); the
  reason is required.
- ``<!-- docs-test: output -->``: the output the step before printed, checked for shape.
- ``<!-- docs-test: file PATH -->``: the block is a file's content, written to PATH.
- ``<!-- docs-test: serves PORT -->``: the block starts a server: it must answer HTTP on
  127.0.0.1:PORT, then it is stopped.

"Shape": numbers, run ids, trial ids and the work folder are free; a documented line
must match a printed line, in order; the params after ``trial-...:`` and ``params:``
are free (another search draws others); a line ending in `` ...`` is a prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUN_LANGUAGES = {"bash", "sh", "shell", "python"}
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARK = re.compile(r"<!--\s*docs-test:\s*(skip|output|file|serves)\b\s*(.*?)\s*-->\s*\Z", re.S)
# Where the docs' outputs were made: paths there are shortened to this folder.
DOC_FOLDER = "/home/me/work"
FREE = re.compile(
    r"(?P<hex>\b[0-9a-f]{32}\b|\b[0-9a-f]{8}\.\.\.)"
    r"|(?P<trial>\btrial-[0-9a-f]{8}\b)"
    r"|(?P<num>[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"
    r"|(?P<space>\s+)"
)
RUN_NOTE = re.compile(r"  \S|Registered an ensemble ")
SHAPES = {
    "hex": r"[0-9a-f.]+",
    "trial": r"trial-[0-9a-f]{8}",
    "num": r"[-+]?[\d.]+(?:e[-+]?\d+)?",
}
FREE_TAIL = re.compile(r"(trial-[0-9a-f]{8}: |  params: |\| best \S+ \S+ )")


@dataclass(frozen=True)
class Step:
    """One block of a page: what to do with it (``run``, ``transcript``, ``skip``,
    ``output``, ``file``, ``serves``), its language, text and the marker's argument."""

    kind: str
    language: str
    text: str
    argument: str
    where: str  # "PAGE:LINE", for messages


def steps(page: Path) -> list[Step]:
    """The page's blocks in order, each with what the docs test does with it."""
    text = page.read_text()
    out: list[Step] = []
    for match in FENCE.finditer(text):
        language, body = match.group(1), match.group(2)
        where = f"{page.name}:{text.count(chr(10), 0, match.start()) + 1}"
        before = text[: match.start()].rstrip()
        mark = MARK.search(before[before.rfind("<!--") :]) if before.endswith("-->") else None
        if mark is not None:
            kind, argument = mark.group(1), mark.group(2)
        elif body.lstrip().startswith("$ "):
            kind, argument = "transcript", ""
        elif language in RUN_LANGUAGES:
            kind, argument = "run", ""
        else:
            continue  # a diagram, a config excerpt: not code to run
        out.append(Step(kind, language, body, argument, where))
    return out


def transcript(text: str) -> list[tuple[str, list[str]]]:
    """A ``$``-transcript as (command, expected output lines) pairs."""
    pairs: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        elif pairs and line.strip():
            pairs[-1][1].append(line)
    return pairs


def pattern(line: str) -> re.Pattern[str]:
    """A documented output line as a regex of its shape (see the module docstring)."""
    line = line.rstrip()
    prefix = line.endswith(" ...")
    line = line[:-4] if prefix else line
    tail = FREE_TAIL.search(line)
    free_tail = tail is not None and not prefix
    if tail is not None:
        line = line[: tail.end()]
    parts, at = [], 0
    for m in FREE.finditer(line):
        parts.append(re.escape(line[at : m.start()]))
        parts.append(SHAPES.get(m.lastgroup or "", r"\s+"))
        at = m.end()
    parts.append(re.escape(line[at:]))
    end = ".*" if (prefix or free_tail) else r"\s*"
    return re.compile("^" + "".join(parts) + end + "$")


def unmatched(expected: list[str], printed: list[str]) -> str | None:
    """The first documented line no printed line matches (in order), or None. The
    sweep's notes (indented two spaces: the task, the log, the registration and its
    aliases) and the ensemble line tell how this run went, not its shape: not checked."""
    lines = iter(printed)
    for want in expected:
        if not want.strip() or RUN_NOTE.match(want):
            continue
        regex = pattern(want.strip() if want.startswith("$") else want)
        if not any(regex.match(line) for line in lines):
            return want
    return None
