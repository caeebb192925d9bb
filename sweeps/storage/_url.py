"""Storage strings: validation, masking and opening.

``sweep.storage`` takes what optuna-dashboard takes: an SQLAlchemy URL for a database, or a plain
file path for Optuna's journal file storage. The same string opens the study in the dashboard.
It also takes ``grpc://HOST:PORT``, the address of Optuna's gRPC storage proxy
(``python -m sweeps.proxy``), which optuna-dashboard cannot open: the dashboard reads the database
behind the proxy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import sqlite3
import urllib.parse
import warnings
from pathlib import Path
from typing import Iterator

import optuna
import sqlalchemy
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sweeps._errors import ConfigError, StorageError
from sweeps.storage._journal import HeartbeatGrpcStorageProxy, HeartbeatJournalStorage
from sweeps.storage._signal_safe import SignalSafeStorage

__all__ = ["RetryStaleTrial", "artifact_dir", "check_storage", "check_workers", "dashboard_command", "grpc_address",
           "is_grpc", "is_url", "mask", "mask_text", "open_database", "open_storage", "probe_storage", "storage_file"]

DIALECTS = ("sqlite", "postgresql", "mysql")
CONNECT_TIMEOUT_S = 10  # how long the probe waits for a database server before calling it unreachable
_SCHEMA_LOCK_KEY = 0x5357_4545_5053  # "SWEEPS": one advisory lock id for schema creation
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# user:password@ inside any URL in free text (Hydra echoes overrides, drivers echo parts of URLs); Hydra's
# multirun writes overrides with ':' escaped (postgresql\://user\:password@host).
_PASSWORD_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*\\?://[^\s:/@'\"\\]*\\?:)[^\s@'\"]*@")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
# What the driver of each dialect is installed as, for the message when it is missing.
_DRIVER_PACKAGES = {"postgresql": "psycopg[binary]", "mysql": "mysqlclient (or use mysql+pymysql:// with pymysql)"}


def is_url(storage: str) -> bool:
    return bool(_URL.match(storage))


def is_grpc(storage: str) -> bool:
    """Whether ``storage`` names Optuna's gRPC storage proxy (``grpc://HOST:PORT``)."""
    return isinstance(storage, str) and storage[:7].lower() == "grpc://"


def grpc_address(storage: str, key: str = "sweep.storage") -> tuple[str, int]:
    """``(host, port)`` of a ``grpc://HOST:PORT`` storage.

    Raises:
        ConfigError: no host, no port or a port outside 1-65535, or anything besides host and port.
    """
    expected = f"{key} must be grpc://HOST:PORT (the address of `python -m sweeps.proxy`), got {mask_text(storage)!r}"
    try:
        parts = urllib.parse.urlsplit(storage)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ConfigError(expected + "; the port must be a number in 1-65535") from None
    if not host or port is None or not 1 <= port <= 65535:
        raise ConfigError(expected)
    if parts.username or parts.password or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(expected + ": the proxy holds the database URL, the workers only its address")
    return host, port


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


def check_storage(storage: str, key: str = "sweep.storage") -> None:
    """Checks the form of ``storage`` and any local file it names, without creating or changing anything.

    Raises:
        ConfigError: a malformed URL, an unsupported dialect or driver, a missing folder, a directory,
            or a file of the wrong kind (an SQLite file given as a journal path, or the reverse).
    """
    if not isinstance(storage, str) or not storage.strip():
        raise ConfigError(f"{key} must be an SQLAlchemy URL or a journal file path, got {storage!r}")
    if not is_url(storage):
        if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", storage) and not re.match(r"^[A-Za-z]:[\\/]", storage):
            raise ConfigError(
                f"{key} {mask(storage)!r} is not a valid URL (dialect://...); "
                "expected e.g. sqlite:///sweeps.db, or a plain path for a journal file"
            )
        _check_journal_file(Path(storage), key)
        return
    if is_grpc(storage):
        grpc_address(storage, key)
        return
    try:
        url = make_url(storage)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"{key} {mask(storage)!r} is not a valid SQLAlchemy URL; "
            "expected e.g. sqlite:///sweeps.db or postgresql://user@host/db"
        ) from None
    dialect = url.get_backend_name()
    if dialect not in DIALECTS:
        raise ConfigError(f"{key}: dialect {dialect!r} is not supported; use one of {list(DIALECTS)}")
    try:
        url.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        raise ConfigError(f"{key} {mask(storage)!r}: SQLAlchemy knows no driver {url.drivername!r}; "
                          f"use {dialect}://... (the default driver) or a driver SQLAlchemy lists") from None
    if dialect == "sqlite":
        _check_sqlite_file(storage, url, key)


def _check_journal_file(path: Path, key: str) -> None:
    shown = str(path)
    if path.is_dir():
        raise ConfigError(f"{key} {shown!r} is a directory; a plain path names a journal file: use e.g. "
                          f"{key}={path / 'sweeps.journal'} or {key}=sqlite:///{path / 'sweeps.db'}")
    if not path.parent.exists():
        raise ConfigError(f"{key}: folder of the journal file {shown!r} does not exist")
    if not path.exists() and path.suffix in _SQLITE_SUFFIXES:
        raise ConfigError(f"{key} {shown!r}: a plain path names a journal file, and {path.suffix} suggests SQLite: "
                          f"use {key}=sqlite:///{shown}, or a journal file name such as {path.with_suffix('.journal')}")
    head = _head(path)
    if head.startswith(_SQLITE_MAGIC):
        raise ConfigError(f"{key} {shown!r} is an SQLite database, but a plain path means a journal file: "
                          f"use {key}=sqlite:///{shown}")
    first = head.split(b"\n", 1)[0].strip()
    if first and not _is_journal_line(first):
        raise ConfigError(f"{key} {shown!r} is not an Optuna journal file (its first line is not a journal "
                          "entry); name a new file, an existing journal, or an SQLAlchemy URL (sqlite:///FILE)")


def _is_journal_line(line: bytes) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and "op_code" in entry


def _head(path: Path, n_bytes: int = 65536) -> bytes:
    """The first bytes of ``path``; empty where it is missing or unreadable (the probe reports that)."""
    try:
        with path.open("rb") as file:
            return file.read(n_bytes)
    except OSError:
        return b""


def _is_sqlite(path: Path) -> bool:
    """Whether ``path`` is an SQLite database (or missing, empty or unreadable: the probe reports those),
    asked of SQLite itself: reading the file directly and closing it would drop every POSIX lock that
    this process's own connections hold on it (a second run in one process, a multirun's next job)."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            conn.execute("PRAGMA schema_version")
    except sqlite3.OperationalError:  # cannot be opened: not ours to call it no database
        return True
    except sqlite3.DatabaseError:  # "file is not a database"
        return False
    return True


def _check_sqlite_file(storage: str, url: sqlalchemy.engine.URL, key: str) -> None:
    if not url.database:
        raise ConfigError(f"{key} {mask(storage)!r} names no database file; expected e.g. sqlite:///sweeps.db")
    if url.database == ":memory:" or url.database.startswith("file:"):
        return
    path = Path(url.database)
    if not path.parent.exists():
        raise ConfigError(f"{key}: folder {str(path.parent)!r} of the SQLite file does not exist")
    if path.is_dir():
        raise ConfigError(f"{key} {mask(storage)!r} names a directory; use e.g. "
                          f"{key}=sqlite:///{path / 'sweeps.db'}")
    if not _is_sqlite(path):
        raise ConfigError(f"{key} {mask(storage)!r}: {str(path)!r} is not an SQLite database; name a new file "
                          "or an existing database (a journal file is given as a plain path, without sqlite:///)")


def storage_file(storage: str) -> Path | None:
    """The local file a storage lives in (a journal file, an SQLite database), or None for a server."""
    if not is_url(storage):
        return Path(storage)
    if is_grpc(storage):
        return None
    url = make_url(storage)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    return Path(url.database)


def probe_storage(storage: str, key: str = "sweep.storage", connect_timeout_s: int = CONNECT_TIMEOUT_S) -> None:
    """Checks that ``storage`` can be opened, without creating or changing anything: a file's folder
    is writable, an existing file readable and writable, a database server answers. Call
    :func:`check_storage` first.

    Raises:
        StorageError: naming the storage (password masked) and what failed.
    """
    file = storage_file(storage)
    if file is not None:
        _probe_file(mask(storage), file, key)
    elif is_grpc(storage):
        _probe_grpc(storage, key, connect_timeout_s)
    elif make_url(storage).get_backend_name() != "sqlite":
        _probe_server(storage, make_url(storage), key, connect_timeout_s)


def _probe_file(shown: str, path: Path, key: str) -> None:
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise StorageError(f"{key} {shown!r}: {str(path)!r} is not readable and writable by this user")
        return
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(f"{key} {shown!r}: cannot create {str(path)!r}: folder {str(folder)!r} "
                           "is not writable by this user")


def _probe_server(storage: str, url: sqlalchemy.engine.URL, key: str, connect_timeout_s: int) -> None:
    dialect = url.get_backend_name()
    try:
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                          connect_args={"connect_timeout": connect_timeout_s})
    except ImportError as exc:
        package = _DRIVER_PACKAGES.get(dialect, "its driver")
        raise StorageError(f"{key} {mask(storage)!r}: the {dialect} driver is not installed "
                           f"({type(exc).__name__}: {exc}); install {package}") from None
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.DBAPIError as exc:
        raise StorageError(f"{key} {mask(storage)!r} cannot be reached: {_reason(exc)}") from None
    finally:
        engine.dispose()


def _probe_grpc(storage: str, key: str, connect_timeout_s: float) -> None:
    """A TCP connection (fails at once where nothing listens), then one storage call through the
    proxy: a study name that does not exist must come back as not found."""
    host, port = grpc_address(storage, key)
    try:
        import grpc
    except ImportError as exc:
        raise StorageError(f"{key} {storage!r}: the gRPC client is not installed ({exc}); "
                           "install sweeps[grpc] (grpcio and protobuf)") from None
    try:
        socket.create_connection((host, port), timeout=connect_timeout_s).close()
    except OSError as exc:
        raise StorageError(f"{key} {storage!r} cannot be reached: no proxy listens at {host}:{port} "
                           f"({exc.strerror or type(exc).__name__}); start it with python -m sweeps.proxy") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        proxy = optuna.storages.GrpcStorageProxy(host=host, port=port)
    try:
        proxy.wait_server_ready(timeout=connect_timeout_s)
        proxy.get_study_id_from_name("sweeps: probe of the storage proxy")
    except KeyError:
        return  # the proxy answered, and so did the database behind it
    except ConnectionError:
        raise StorageError(f"{key} {storage!r} cannot be reached: {host}:{port} does not answer gRPC within "
                           f"{connect_timeout_s} s (is it `python -m sweeps.proxy`?)") from None
    except grpc.RpcError as exc:
        raise StorageError(f"{key} {storage!r}: the proxy at {host}:{port} answers, but not as an Optuna storage: "
                           f"{_rpc_reason(exc)}") from None
    finally:
        proxy.close()


def _rpc_reason(exc: BaseException) -> str:
    """A gRPC error's status and the first line of its details, passwords masked."""
    code = getattr(exc, "code", lambda: None)()
    details = str(getattr(exc, "details", lambda: "")() or exc).strip()
    first = details.splitlines()[0] if details else type(exc).__name__
    return mask_text(f"{code.name}: {first}" if code is not None else first)


def _reason(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's wrapping and background link."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return mask_text(first.removeprefix("connection failed: "))


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
    is failed as stale and retried up to ``max_retry`` times, behind :class:`SignalSafeStorage` (a
    Ctrl-C never cuts one of its calls in half). Call :func:`check_storage` first.

    Args:
        storage: an SQLAlchemy URL or a journal file path.
        heartbeat_interval: seconds between a running trial's heartbeats.
        grace_period: seconds without a heartbeat after which a trial is stale; default twice the
            interval.
        max_retry: how many times one configuration is retried after going stale.

    Raises:
        StorageError: the storage cannot be opened (server gone, driver missing, schema of another
            Optuna version, file unreadable).
    """
    try:
        return SignalSafeStorage(_open(storage, heartbeat_interval, grace_period, max_retry))
    except ConnectionError:  # the gRPC proxy did not answer (a ConnectionError is an OSError too)
        raise StorageError(f"sweep.storage {storage!r} cannot be opened: the proxy does not answer within "
                           f"{CONNECT_TIMEOUT_S} s") from None
    except (sqlalchemy.exc.DBAPIError, ImportError, OSError) as exc:
        raise StorageError(f"sweep.storage {mask(storage)!r} cannot be opened: {_reason(exc)}") from None
    except RuntimeError as exc:  # Optuna: the tables were made by another Optuna version
        raise StorageError(f"sweep.storage {mask(storage)!r} cannot be opened: {mask_text(str(exc))}") from None


def _open(
    storage: str, heartbeat_interval: int, grace_period: int | None, max_retry: int
) -> optuna.storages.BaseStorage:
    grace = grace_period or 2 * heartbeat_interval
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryStaleTrial(max_retry=max_retry)
        if not is_url(storage):
            return HeartbeatJournalStorage(storage, heartbeat_interval, grace, retry)
        if is_grpc(storage):
            host, port = grpc_address(storage)
            proxy = HeartbeatGrpcStorageProxy(host, port, heartbeat_interval, grace, retry)
            proxy.wait_server_ready(timeout=CONNECT_TIMEOUT_S)
            return proxy
        with _schema_lock(storage):
            return optuna.storages.RDBStorage(
                storage,
                engine_kwargs=_engine_kwargs(storage),
                heartbeat_interval=heartbeat_interval,
                grace_period=grace,
                heartbeat_stale_trial_callback=retry,
            )


def _engine_kwargs(storage: str, pool_size: int = 5) -> dict:
    if make_url(storage).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": 60}}
    return {"pool_pre_ping": True, "pool_size": pool_size}


def open_database(storage: str, pool_size: int = 5) -> optuna.storages.BaseStorage:
    """Opens (creating if needed) a database for the gRPC storage proxy to serve: no heartbeats (the
    workers send theirs through the proxy as trial attributes, ``_journal.py``), Optuna's in-process
    cache in front (``optuna.storages.get_storage``, as Optuna's proxy documentation asks), and up
    to ``pool_size`` connections. Call :func:`check_storage` first.

    Raises:
        StorageError: as :func:`open_storage`.
    """
    try:
        with _schema_lock(storage):
            rdb = optuna.storages.RDBStorage(storage, engine_kwargs=_engine_kwargs(storage, pool_size))
        return optuna.storages.get_storage(rdb)
    except (sqlalchemy.exc.DBAPIError, ImportError, OSError) as exc:
        raise StorageError(f"--storage {mask(storage)!r} cannot be opened: {_reason(exc)}") from None
    except RuntimeError as exc:
        raise StorageError(f"--storage {mask(storage)!r} cannot be opened: {mask_text(str(exc))}") from None


@contextlib.contextmanager
def _schema_lock(storage: str) -> Iterator[None]:
    """Serializes Optuna's table creation across processes: workers or commands started at once
    on an empty database otherwise race in CREATE TABLE or in the schema version row and crash
    (PostgreSQL: an advisory lock; an SQLite file: an exclusive flock on its folder)."""
    url = make_url(storage)
    if url.get_backend_name() == "sqlite":
        with _file_lock(url.database):
            yield
        return
    if url.get_backend_name() != "postgresql":
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


@contextlib.contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    # The lock is on the database's folder, never on the file: closing any descriptor of an SQLite file
    # drops every POSIX lock this process holds on it, the locks SQLite's own connections rely on (in
    # write-ahead-log mode a connection holds one as long as it is open).
    fd = os.open(os.path.dirname(os.path.abspath(database)), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not os.path.exists(database) or os.path.getsize(database) == 0 or _holds_no_study(database):
            _write_ahead_log(database)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _holds_no_study(database: str) -> bool:
    """Whether an SQLite file holds no study yet: one that optuna-dashboard, or any Optuna script, made
    by opening it before the first sweep did (Optuna's tables in its rollback-journal mode), which no
    user chose a mode for. An unreadable file counts as holding studies: it keeps its mode."""
    try:
        with contextlib.closing(sqlite3.connect(_read_only_uri(database), uri=True, timeout=5)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            return "studies" not in tables or conn.execute("SELECT 1 FROM studies LIMIT 1").fetchone() is None
    except sqlite3.Error:
        return False


def _read_only_uri(database: str) -> str:
    return f"file:{urllib.parse.quote(os.path.abspath(database))}?mode=ro"  # quoted: a '?' or '#' in the path


def _write_ahead_log(database: str) -> None:
    """Puts a new SQLite database in write-ahead-log mode (the mode is kept in the file).

    Optuna commits every attribute, report and state change on its own, and in SQLite's default
    rollback journal each commit syncs the database file and its journal: about 1.3 ms here, a sweeps
    trial makes 20 of them. In WAL mode a commit appends to one file and syncs it (``synchronous`` stays
    FULL, so a commit survives a power loss as before), about 3x cheaper, and readers (the dashboard,
    other workers) no longer block the writer. Files that hold studies keep their mode: a user who set
    it keeps it. A file without a study is switched too: in its rollback journal, a dashboard polling
    the file while a sweep writes holds read locks that the sweep's commits wait behind. Another
    process that has the file open and idle does not stop the switch; one in a transaction for longer
    than the timeout leaves the file as it was. WAL needs the database's folder on a local disk
    (SQLite's shared memory file), as SQLite on several machines never worked anyway: many machines
    use PostgreSQL.
    """
    with contextlib.closing(sqlite3.connect(database, timeout=60)) as conn:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:  # busy past the timeout: the file works in its own mode
            pass


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
    """The command that opens ``storage`` in optuna-dashboard, password masked. optuna-dashboard
    cannot open ``grpc://``: for the proxy, the command names the database behind it."""
    shown = "DATABASE_URL" if is_grpc(storage) else mask(storage)
    command = f"optuna-dashboard {shown}" + (f" --artifact-dir {artifact_dir}" if artifact_dir else "")
    if is_grpc(storage):
        command += f"  (DATABASE_URL: the --storage of the proxy at {storage}; optuna-dashboard cannot open grpc://)"
    return command
