"""What every command line does with the errors a user can cause: one line on stderr, no
traceback, the exit code of sweeps._exit, any storage password masked."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

import optuna
import sqlalchemy

from sweeps._errors import ConfigError, StorageError
from sweeps._exit import EXIT_CONFIG, EXIT_SIGINT, EXIT_STORAGE
from sweeps.storage._url import mask_text

__all__ = ["guarded", "one_line"]


def one_line(message: str) -> str:
    """``message`` on one line (a user's exception text may span several), passwords masked."""
    return mask_text(re.sub(r"\s*\n\s*", " ", str(message).strip()))


def _lost_storage(exc: BaseException) -> bool:
    """A database connection that failed mid-run (Optuna wraps it in StorageInternalError)."""
    cause = exc.__cause__ if isinstance(exc, optuna.exceptions.StorageInternalError) else exc
    return isinstance(cause, sqlalchemy.exc.OperationalError)


def _lost_proxy(exc: BaseException) -> bool:
    """The gRPC storage proxy went away mid-run (grpc.RpcError UNAVAILABLE; grpc may not be installed)."""
    code = getattr(exc, "code", None)
    return type(exc).__module__.startswith("grpc") and callable(code) and getattr(code(), "name", "") == "UNAVAILABLE"


def guarded(body: Callable[[], int]) -> int:
    """Runs a command's ``body``; a ConfigError exits 2, a StorageError (or a database connection
    lost mid-run) exits 4, Ctrl-C before the sweep started exits 130, each with one line on stderr."""
    try:
        return body()
    except KeyboardInterrupt:  # composing or loading data; the run loop handles its own interrupts
        print("interrupted before the sweep started; nothing was run", file=sys.stderr)
        return EXIT_SIGINT
    except ConfigError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except StorageError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_STORAGE
    except (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError) as exc:
        if not _lost_storage(exc):
            raise
        cause = exc.__cause__ or exc
        reason = str(getattr(cause, "orig", None) or cause)
        print(f"error: the storage failed during the run: {one_line(reason.splitlines()[0] if reason else '')}; "
              "rerun the same command to resume once it is back", file=sys.stderr)
        return EXIT_STORAGE
    except Exception as exc:
        if not _lost_proxy(exc):
            raise
        print("error: the gRPC storage proxy stopped answering during the run; rerun the same command to resume "
              "once it is back", file=sys.stderr)
        return EXIT_STORAGE
