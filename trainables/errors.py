"""The one error type for bad data or data options: the CLI prints its message (which
names the offending config key or file) in one line and exits 2, before any trial."""


class DataError(ValueError):
    """A dataset file is missing or malformed, or a dataset option is invalid."""
