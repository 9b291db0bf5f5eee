"""Every error dnn-sweep reports in one line, in one module.

``UserError`` and its kinds are bad input: the message names the offending config key or
file and what is allowed, the command prints it as one line and exits 2, before any
trial starts. ``NoResultError`` is a sweep that ran but kept nothing, ``SweepError`` one
whose trials ran and whose final phase failed (both exit 1: something ran). The
search, model and tracking sides all raise these; none defines its own.
"""


class UserError(Exception):
    """Bad input, found before any trial starts (exit 2)."""


class ConfigError(UserError, ValueError):
    """A config value is invalid. The message names the key and what is allowed."""


class DataError(UserError, ValueError):
    """A dataset file is missing or malformed, or a dataset option is invalid."""


class TrackingError(UserError, RuntimeError):
    """The tracking backend cannot be used (unreachable server, bad URI, a sweep or
    registered model that is not there)."""


class NoResultError(RuntimeError):
    """The sweep ran but no trial finished an epoch (all failed, or the time budget ended
    first). The message says which, and where to look (exit 1)."""


class SweepError(RuntimeError):
    """The sweep's trials ran, then its final phase failed (a record or a model that
    could not be written): the trials are kept, and ``resume=true`` finishes the sweep
    (exit 1, never 2: the docs keep 2 for "nothing ran")."""


def reason(exc: BaseException, limit: int = 200) -> str:
    """The "why" a one-line message quotes from a library's exception: its first line,
    control characters (a binary file's bytes in a parser's message) replaced, at most
    ``limit`` characters; the exception's type when it has no text."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = "".join(c if c.isprintable() else "?" for c in (lines[0] if lines else ""))
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text or type(exc).__name__
