"""A storage whose calls a Ctrl-C or SIGTERM never cuts in half.

A sweep turns SIGINT and SIGTERM into an exception raised in the main thread wherever it runs
(``sweeps/_interrupt.py``). Raised inside a storage call, between SQLAlchemy's write and its commit or
in the middle of its session's bookkeeping, it left the thread's session broken ("this identity map
is no longer valid"), and the interrupted trial's own bookkeeping then failed with a traceback; once
a sweep ran on to its end, and once (not reproduced) one ended with "database is locked", which a
connection left holding SQLite's write lock would explain. :class:`SignalSafeStorage` runs each
call of the storage it wraps inside :func:`sweeps._interrupt.deferred`: a signal that arrives during
a call is raised as soon as the call has returned. Calls take milliseconds, so Ctrl-C still stops a
sweep at once.

Optuna's heartbeat base class comes through ``_journal.py``, the one module that imports it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import optuna

from sweeps._interrupt import deferred
from sweeps.storage._journal import BaseHeartbeat  # not in its __all__: kept out of sweeps.storage's names

__all__ = ["SignalSafeStorage"]

# Optuna's own helpers call _get_stale_trial_ids (fail_stale_trials) on any heartbeat storage.
_PRIVATE_CALLS = ("_get_stale_trial_ids",)


def _calls(*classes: type) -> list[str]:
    names = {name for cls in classes for name, value in vars(cls).items() if callable(value)}
    return sorted(name for name in names if not name.startswith("_") or name in _PRIVATE_CALLS)


def _deferring(name: str) -> Callable[..., Any]:
    def call(self: SignalSafeStorage, *args: Any, **kwargs: Any) -> Any:
        with deferred():
            return getattr(self.storage, name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"``{name}`` of the wrapped storage, a signal held until it returns."
    return call


def _delegate_calls(cls: type) -> type:
    for name in _calls(optuna.storages.BaseStorage, BaseHeartbeat):
        if name not in vars(cls):
            setattr(cls, name, _deferring(name))
    abc.update_abstractmethods(cls)
    return cls


@_delegate_calls
class SignalSafeStorage(optuna.storages.BaseStorage, BaseHeartbeat):
    """Wraps a storage so that a SIGINT or SIGTERM never interrupts one of its calls.

    Every method of Optuna's storage and heartbeat interfaces forwards to the wrapped storage under
    :func:`sweeps._interrupt.deferred`; in threads other than the main one (the heartbeat's) that
    does nothing, as signals reach only the main thread.

    Args:
        backend: the storage to wrap (``RDBStorage``, a journal or the gRPC proxy's client). An
            ``RDBStorage`` goes behind Optuna's in-process cache, as a Study would put it.

    Attributes:
        backend: the storage as given (an ``RDBStorage``'s ``engine`` is there).
        storage: what the calls go to: ``optuna.storages.get_storage(backend)``.
    """

    def __init__(self, backend: optuna.storages.BaseStorage) -> None:
        self.backend = backend
        self.storage = optuna.storages.get_storage(backend)

    def get_heartbeat_interval(self) -> int | None:
        if not isinstance(self.storage, BaseHeartbeat):
            return None  # heartbeats off, as Optuna treats a storage without them
        return self.storage.get_heartbeat_interval()

    def __repr__(self) -> str:
        return f"SignalSafeStorage({self.backend!r})"
