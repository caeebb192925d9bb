import os

import pytest


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Runs the test inside a fresh temporary working directory (sweeps.db, exports/ land there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _quiet_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


POSTGRES_URL = os.environ.get("SWEEPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    The server comes from SWEEPS_TEST_POSTGRES_URL (default: the local test server). Where none is
    reachable the test is skipped, unless SWEEPS_REQUIRE_SERVICES=1 (set by .ci/run) makes it fail.
    """
    import uuid

    import sqlalchemy
    from sqlalchemy.engine import make_url

    from sweeps.storage._url import mask

    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:  # any driver error means: no server to test against
        reason = (f"PostgreSQL not reachable at {mask(POSTGRES_URL)} ({type(exc).__name__}); "
                  "set SWEEPS_TEST_POSTGRES_URL")
        if os.environ.get("SWEEPS_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"sweeps_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
