"""Errors the CLI reports in one line: bad user input (exit 2, before any trial starts)
and a sweep that ran but produced nothing to keep (exit 1)."""


class ConfigError(ValueError):
    """A config value is invalid. The message names the key and what is allowed."""


class NoResultError(RuntimeError):
    """The sweep ran but no trial finished an epoch (all failed, or the time budget ended
    first). The message says which, and where to look."""
