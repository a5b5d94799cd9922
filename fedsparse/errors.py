"""Error types raised for bad input, before any work starts."""


class ConfigError(ValueError):
    """A setting is invalid. The message names the setting and what is allowed."""


class DataError(RuntimeError):
    """Data cannot be found, read or split as asked. The message names the file or setting."""
