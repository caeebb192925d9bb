"""The errors a user can fix: a bad config or command line, and a storage that cannot be reached."""

__all__ = ["ConfigError", "StorageError"]


class ConfigError(ValueError):
    """Bad input, caught before any trial runs. Its message names the key, the value and what
    is allowed; the command line prints it without a traceback and exits with code 2."""


class StorageError(RuntimeError):
    """The storage is well-formed but cannot be reached or opened (server down, database missing,
    driver not installed, file unreadable). Not a config error: the command line prints one line
    without a traceback and exits with code 4; rerun once the storage is back."""
