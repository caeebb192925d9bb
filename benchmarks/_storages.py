"""What the storage benchmarks share: a throw-away PostgreSQL database, a gRPC proxy in front of it,
and a trivial objective that keeps sweeps' per-trial path (sampling, the duplicate check) but trains
nothing."""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna

from benchmarks._tables import env

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
# The quickstart search space (4 to 6 parameters per trial), random sampling: the figures are the
# storage's and sweeps' own; TPE's cost grows with the study on its own (Optuna's, not measured here).
BASE = ["+experiment=quickstart", "sweep.sampler=random", "sweep.pruner=none", "monitor=off", "preflight=off",
        "trainer.num_threads=1", "vault.auto_open=false", "sweep.heartbeat_interval=30"]


@contextlib.contextmanager
def temp_postgres(server_url: str) -> Iterator[str | None]:
    """A fresh database on ``server_url``'s server, dropped afterwards; None where none answers."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    admin = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    name = f"sweeps_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except Exception:  # noqa: BLE001 (any driver error: no server to measure against)
        admin.dispose()
        yield None
        return
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def grpc_proxy(database_url: str, log: Path, threads: int = 16) -> Iterator[str]:
    """``python -m sweeps.proxy`` in front of ``database_url``; yields its ``grpc://`` URL."""
    from sweeps.proxy import wait_until_serving

    port = _free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sweeps.proxy", "--storage", database_url, "--port", str(port),
                                 "--threads", str(threads)], env=env(), stdout=out, stderr=subprocess.STDOUT)
    url = f"grpc://127.0.0.1:{port}"
    try:
        if not wait_until_serving(url, proc):
            raise RuntimeError(f"the gRPC proxy did not start; see {log}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


class TrivialObjective:
    """Stands in for ``sweeps.trial._objective.Objective``: samples the space and runs the duplicate check
    (sweeps' own per-trial reads), then returns a random value instead of training."""

    def __init__(self, experiment: Any, data: Any, renderer: Any = None) -> None:
        self.experiment = experiment
        self._rng = random.Random(0)
        self.known_trials = None  # set by the trial loop before each trial, as on the Objective

    def __call__(self, trial: optuna.Trial) -> float:
        from sweeps.trial._objective import _duplicate_of

        params = self.experiment.space.sample(trial)
        _duplicate_of(trial, params, self.known_trials)
        return self._rng.random()


class NoData:
    """The ``Dataset`` that ``run_trials`` hands to the objective; the trivial one needs none."""

    def train_val(self) -> None:
        return None


@contextlib.contextmanager
def trivial_trials(stamps: list[float] | None = None) -> Iterator[None]:
    """Makes ``sweeps.driver._loop.run_trials`` use :class:`TrivialObjective`, print nothing, and append
    the time of each finished trial's progress line to ``stamps``."""
    import io

    import sweeps.driver._loop as driver  # the trial loop (sweeps/driver/_loop.py)

    original_objective, original_progress = driver.Objective, driver._progress

    def progress(*args: Any, **kwargs: Any) -> None:
        if stamps is not None:
            stamps.append(time.perf_counter())
        original_progress(*args, **kwargs)

    driver.Objective, driver._progress = TrivialObjective, progress
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        driver.Objective, driver._progress = original_objective, original_progress


def set_n_trials(exp: Any, n_trials: int) -> None:
    exp.cfg.sweep.n_trials = n_trials
