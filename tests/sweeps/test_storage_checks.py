"""Storage strings: the form check and the probe write nothing; what cannot be reached exits 4."""

import sqlite3
import subprocess
import sys

import optuna
import pytest
import sqlalchemy

from sweeps._cli import guarded
from sweeps._errors import ConfigError, StorageError
from sweeps._exit import EXIT_CONFIG, EXIT_STORAGE
from sweeps.storage._url import check_storage, mask_text, open_storage, probe_storage, storage_file


def test_storage_probe_of_new_files_creates_nothing(in_tmp):
    for storage in ("sqlite:///new.db", "new.journal"):
        check_storage(storage)
        probe_storage(storage)
    assert list(in_tmp.iterdir()) == []


def test_storage_check_accepts_existing_optuna_storages(in_tmp):
    optuna.create_study(study_name="s", storage="sqlite:///made.db")
    optuna.create_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(in_tmp / "made.journal"))))
    (in_tmp / "empty.journal").write_text("")
    for storage in ("sqlite:///made.db", "made.journal", "empty.journal"):
        check_storage(storage)
        probe_storage(storage)


def _journal_mode(path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]


def test_storage_open_puts_a_new_sqlite_file_in_wal_mode_and_keeps_an_existing_ones(in_tmp):
    open_storage("sqlite:///new.db")
    optuna.create_study(study_name="s", storage="sqlite:///old.db")  # Optuna's own: a rollback journal
    open_storage("sqlite:///old.db")
    assert (_journal_mode(in_tmp / "new.db"), _journal_mode(in_tmp / "old.db")) == ("wal", "delete")


def test_storage_open_puts_a_file_without_a_study_in_wal_mode_while_a_dashboard_holds_it_open(in_tmp):
    # optuna-dashboard started before the first sweep makes the file (Optuna's tables, a rollback
    # journal) and keeps a connection to it; the sweep's commits would wait behind its reads.
    dashboard = optuna.storages.RDBStorage("sqlite:///dash.db")
    assert (dashboard.get_all_studies(), _journal_mode(in_tmp / "dash.db")) == ([], "delete")
    storage = open_storage("sqlite:///dash.db")
    assert _journal_mode(in_tmp / "dash.db") == "wal"
    optuna.create_study(study_name="s", storage=storage).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    # The dashboard's open connection reads on, and can still write (its notes are study attributes).
    dashboard.set_study_system_attr(dashboard.get_study_id_from_name("s"), "note", "seen")
    assert len(dashboard.get_all_trials(dashboard.get_study_id_from_name("s"))) == 2
    reread = optuna.storages.RDBStorage("sqlite:///dash.db")
    assert reread.get_study_system_attrs(reread.get_study_id_from_name("s")) == {"note": "seen"}


def test_storage_wal_keeps_what_a_killed_process_committed(in_tmp):
    # The process dies without closing its connection: its commits are in the -wal file only.
    code = ("import os, optuna; from sweeps.storage._url import open_storage; "
            "s = optuna.create_study(study_name='s', storage=open_storage('sqlite:///w.db')); "
            "t = s.ask(); t.set_user_attr('kept', 7); s.tell(t, 0.5); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    (trial,) = optuna.load_study(study_name="s", storage="sqlite:///w.db").trials
    assert (trial.value, trial.user_attrs, _journal_mode(in_tmp / "w.db")) == (0.5, {"kept": 7}, "wal")


@pytest.mark.parametrize("storage,message", [
    ("made.db", "is an SQLite database, but a plain path means a journal file: use sweep.storage=sqlite:///made.db"),
    ("sqlite:///made.journal", "'made.journal' is not an SQLite database"),
    ("notes.txt", "is not an Optuna journal file"),
    (".", "is a directory"),
])
def test_storage_check_refuses_the_wrong_kind_of_file(storage, message, in_tmp):
    optuna.create_study(study_name="s", storage="sqlite:///made.db")
    (in_tmp / "made.journal").write_text('{"op_code": 0, "worker_id": "w"}\n')
    (in_tmp / "notes.txt").write_text("hello\n")
    with pytest.raises(ConfigError, match="sweep.storage") as info:
        check_storage(storage)
    assert message in str(info.value)


def test_storage_file_names_the_local_file_or_none():
    assert str(storage_file("sqlite:///a/b.db")) == "a/b.db"
    assert str(storage_file("x.journal")) == "x.journal"
    assert storage_file("postgresql://u@h/db") is None and storage_file("sqlite:///:memory:") is None


def test_storage_unreachable_server_raises_storage_error_naming_the_key():
    with pytest.raises(StorageError, match=r"^--storage 'postgresql://u:\*\*\*@127.0.0.1:1/db' cannot be reached"):
        probe_storage("postgresql://u:pw@127.0.0.1:1/db", key="--storage")
    with pytest.raises(StorageError, match="cannot be opened"):
        open_storage("postgresql://u:pw@127.0.0.1:1/db")


def test_storage_mask_text_leaves_other_text_alone():
    assert mask_text("a://u:p@h and b://v:q@k") == "a://u:***@h and b://v:***@k"
    assert mask_text("sqlite:///x.db; user: pw@host") == "sqlite:///x.db; user: pw@host"


def _raises(exc):
    def body():
        raise exc
    return body


def test_cli_guard_prints_one_masked_line_with_the_exit_code(capsys):
    assert guarded(_raises(ConfigError("bad\nvalue at postgresql://u:pw@h/db"))) == EXIT_CONFIG
    assert capsys.readouterr().err == "error: bad value at postgresql://u:***@h/db\n"
    assert guarded(_raises(StorageError("gone"))) == EXIT_STORAGE
    assert capsys.readouterr().err == "error: gone\n"


def test_cli_guard_turns_a_connection_lost_mid_run_into_exit_4(capsys):
    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    try:
        raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from lost
    except optuna.exceptions.StorageInternalError as exc:
        wrapped = exc
    assert guarded(_raises(wrapped)) == EXIT_STORAGE
    err = capsys.readouterr().err
    assert err.startswith("error: the storage failed during the run: server closed the connection unexpectedly")
    assert len(err.splitlines()) == 1
    with pytest.raises(optuna.exceptions.StorageInternalError):  # other storage errors are bugs: a traceback
        guarded(_raises(optuna.exceptions.StorageInternalError("invalid data")))


def test_storage_check_and_open_keep_the_locks_this_process_holds_on_an_open_database(in_tmp):
    # Closing any descriptor of an SQLite file drops the process's POSIX locks on it: the check and the
    # schema lock must not open the file itself while this process has a connection to it.
    open_storage("sqlite:///held.db")
    held = sqlite3.connect(in_tmp / "held.db")
    held.execute("CREATE TABLE IF NOT EXISTS t (x)")
    held.commit()
    held.execute("BEGIN")
    held.execute("SELECT * FROM t").fetchall()  # a read transaction: a lock another process must respect
    check_storage("sqlite:///held.db")
    open_storage("sqlite:///held.db")
    other = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0.5); "
             "print(c.execute('PRAGMA journal_mode=DELETE').fetchone()[0])")
    result = subprocess.run([sys.executable, "-c", other, str(in_tmp / "held.db")], capture_output=True, text=True,
                            timeout=120)
    held.rollback()
    held.close()
    # Another process cannot take the file out of WAL mode while this one reads it.
    assert result.stdout.strip() != "delete" and _journal_mode(in_tmp / "held.db") == "wal"
