"""The one error type for bad user input: the CLI turns it into exit 2 and one line."""


class ConfigError(ValueError):
    """A config value is invalid. The message names the key and what is allowed."""
