"""Storage strings: validation, masking and opening.

``sweep.storage`` takes what optuna-dashboard takes: an SQLAlchemy URL for a database, or a plain
file path for Optuna's journal file storage. The same string opens the study in the dashboard.
"""

from __future__ import annotations

import re
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sweeps._errors import ConfigError

__all__ = ["artifact_dir", "check_storage", "mask", "open_storage", "is_url", "dashboard_command"]

DIALECTS = ("sqlite", "postgresql", "mysql")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(storage: str) -> bool:
    return bool(_URL.match(storage))


def mask(storage: str) -> str:
    """``storage`` with any password replaced by ``***``; safe for logs, notes and exports."""
    if not is_url(storage):
        return storage
    try:
        return make_url(storage).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", storage)


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


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """Opens (creating if needed) the storage; call :func:`check_storage` first."""
    if is_url(storage):
        return optuna.storages.RDBStorage(storage)
    return JournalStorage(JournalFileBackend(storage))


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


def dashboard_command(storage: str, artifact_dir: str | None = None) -> str:
    """The command that opens ``storage`` in optuna-dashboard, password masked."""
    command = f"optuna-dashboard {mask(storage)}"
    return command + (f" --artifact-dir {artifact_dir}" if artifact_dir else "")
