"""Storage strings: validation, masking and opening.

``sweep.storage`` takes what optuna-dashboard takes: an SQLAlchemy URL for a database, or a plain
file path for Optuna's journal file storage. The same string opens the study in the dashboard.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from pathlib import Path
from typing import Iterator

import optuna
import sqlalchemy
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sweeps._journal import HeartbeatJournalStorage

from sweeps._errors import ConfigError

__all__ = ["RetryStaleTrial", "artifact_dir", "check_storage", "check_workers", "mask", "open_storage", "is_url", "dashboard_command"]

DIALECTS = ("sqlite", "postgresql", "mysql")
_SCHEMA_LOCK_KEY = 0x5357_4545_5053  # "SWEEPS": one advisory lock id for schema creation
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# user:password@ inside any URL in free text (Hydra echoes overrides, drivers echo parts of URLs); Hydra's
# multirun writes overrides with ':' escaped (postgresql\://user\:password@host).
_PASSWORD_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*\\?://[^\s:/@'\"\\]*\\?:)[^\s@'\"]*@")


def is_url(storage: str) -> bool:
    return bool(_URL.match(storage))


def mask(storage: str) -> str:
    """``storage`` with any password replaced by ``***``; safe for logs, notes and exports."""
    if not is_url(storage):
        return storage
    try:
        return make_url(storage).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return mask_text(storage)


def mask_text(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced by ``***``."""
    return _PASSWORD_IN_TEXT.sub(r"\1***@", text)


def check_storage(storage: str) -> None:
    """Checks ``storage`` without touching it.

    Raises:
        ConfigError: a malformed URL, an unsupported dialect, or a file whose folder is missing.
    """
    if not isinstance(storage, str) or not storage.strip():
        raise ConfigError(f"sweep.storage must be an SQLAlchemy URL or a journal file path, got {storage!r}")
    if not is_url(storage):
        if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", storage):
            raise ConfigError(
                f"sweep.storage {mask(storage)!r} is not a valid URL (dialect://...); "
                "expected e.g. sqlite:///sweeps.db, or a plain path for a journal file"
            )
        if not Path(storage).parent.exists():
            raise ConfigError(f"sweep.storage: folder of the journal file {storage!r} does not exist")
        return
    try:
        url = make_url(storage)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"sweep.storage {mask(storage)!r} is not a valid SQLAlchemy URL; "
            "expected e.g. sqlite:///sweeps.db or postgresql://user@host/db"
        ) from None
    dialect = url.get_backend_name()
    if dialect not in DIALECTS:
        raise ConfigError(f"sweep.storage: dialect {dialect!r} is not supported; use one of {list(DIALECTS)}")
    if dialect == "sqlite":
        if not url.database:
            raise ConfigError(f"sweep.storage {storage!r} names no database file; expected e.g. sqlite:///sweeps.db")
        folder = Path(url.database).parent
        if url.database != ":memory:" and not folder.exists():
            raise ConfigError(f"sweep.storage: folder {str(folder)!r} of the SQLite file does not exist")


class RetryStaleTrial(RetryHeartbeatStaleTrialCallback):
    """Re-queues a trial failed as stale with the same parameters, seed and searched values, and
    marks the new trial with ``retry_of`` (the stale trial's number)."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial.set_user_attr("retry_of", trial.number)
        super().__call__(study, trial)


def open_storage(
    storage: str, heartbeat_interval: int = 30, grace_period: int | None = None, max_retry: int = 2
) -> optuna.storages.BaseStorage:
    """Opens (creating if needed) the storage, with heartbeats so that a trial whose worker died
    is failed as stale and retried up to ``max_retry`` times. Call :func:`check_storage` first.

    Args:
        storage: an SQLAlchemy URL or a journal file path.
        heartbeat_interval: seconds between a running trial's heartbeats.
        grace_period: seconds without a heartbeat after which a trial is stale; default twice the
            interval.
        max_retry: how many times one configuration is retried after going stale.
    """
    grace = grace_period or 2 * heartbeat_interval
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryStaleTrial(max_retry=max_retry)
        if not is_url(storage):
            return HeartbeatJournalStorage(storage, heartbeat_interval, grace, retry)
        with _schema_lock(storage):
            return optuna.storages.RDBStorage(
                storage,
                engine_kwargs=_engine_kwargs(storage),
                heartbeat_interval=heartbeat_interval,
                grace_period=grace,
                heartbeat_stale_trial_callback=retry,
            )


def _engine_kwargs(storage: str) -> dict:
    if make_url(storage).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True}


@contextlib.contextmanager
def _schema_lock(storage: str) -> Iterator[None]:
    """Serializes Optuna's table creation across processes on PostgreSQL: workers started at once
    on an empty database otherwise race in CREATE TABLE and crash."""
    if make_url(storage).get_backend_name() != "postgresql":
        yield
        return
    engine = sqlalchemy.create_engine(storage, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()


def artifact_dir(storage: str, configured: str | None = None) -> Path:
    """Where Optuna's file-system artifact store keeps a study's files: ``configured`` when set,
    else beside the storage file (``sweeps.db`` -> ``sweeps_artifacts/``), else ``./artifacts``."""
    if configured:
        return Path(configured)
    if not is_url(storage):
        return Path(storage).with_name(Path(storage).stem + "_artifacts")
    url = make_url(storage)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).with_name(Path(url.database).stem + "_artifacts")
    return Path("artifacts")


def check_workers(storage: str, n_workers: int) -> None:
    """Refuses several workers on SQLite, which locks under concurrent writers."""
    if n_workers == 1 or not is_url(storage) or make_url(storage).get_backend_name() != "sqlite":
        return
    raise ConfigError(
        f"sweep.n_workers={n_workers} needs a storage that several processes can share, not SQLite "
        f"({mask(storage)}): use a journal file on one machine (sweep.storage=sweeps.journal) or "
        "PostgreSQL across machines (sweep.storage=postgresql://USER@HOST/DB)"
    )


def dashboard_command(storage: str, artifact_dir: str | None = None) -> str:
    """The command that opens ``storage`` in optuna-dashboard, password masked."""
    command = f"optuna-dashboard {mask(storage)}"
    return command + (f" --artifact-dir {artifact_dir}" if artifact_dir else "")
