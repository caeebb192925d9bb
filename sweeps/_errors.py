"""The error a user can fix by changing their config or command line."""

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """Bad input, caught before any trial runs. Its message names the key, the value and what
    is allowed; the command line prints it without a traceback and exits with code 2."""
