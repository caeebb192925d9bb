"""Optuna's gRPC storage proxy: ``python -m sweeps.proxy`` in front of PostgreSQL, workers on
``sweep.storage=grpc://HOST:PORT``, heartbeats through the proxy, one-line errors, masked passwords."""

import signal
import socket
import subprocess
import sys
import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from sweeps._errors import ConfigError, StorageError
from sweeps.proxy import wait_until_serving
from sweeps.storage import study_id, trial_id
from sweeps.storage._journal import HEARTBEAT_ATTR
from sweeps.storage._url import (
    check_storage,
    dashboard_command,
    grpc_address,
    open_storage,
    probe_storage,
    storage_file,
)
from sweeps.study._study import count_trials, end_reason
from tests.helpers import subprocess_env

pytest.importorskip("grpc")
SECRET = "s3cretPW"  # PostgreSQL here trusts local users: a password in the URL is accepted and never checked
TINY = ["trainer.max_epochs=1", "trainer.num_threads=1", "monitor=off", "preflight=off", "select=off",
        "model.width=16", "sweep.sampler=random", "+search.optimizer.lr={type:float,low:0.001,high:0.3,log:true}"]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _proxy_command(storage, port, *extra):
    return [sys.executable, "-m", "sweeps.proxy", "--storage", storage, "--host", "127.0.0.1", "--port", str(port),
            *extra]


@pytest.fixture
def proxy(postgres_url):
    """A running proxy in front of a fresh PostgreSQL database whose URL holds a password; yields
    ``(grpc_url, database_url)``; stops it with SIGTERM and checks that it never printed the password."""
    database = make_url(postgres_url).set(password=SECRET).render_as_string(hide_password=False)
    port = _free_port()
    proc = subprocess.Popen(_proxy_command(database, port), env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"grpc://127.0.0.1:{port}"
    if not wait_until_serving(url, proc):
        proc.kill()
        pytest.fail(f"the proxy did not start: {proc.communicate()[0]}")
    try:
        yield url, database
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert SECRET not in out
        assert f"postgresql://postgres:***@127.0.0.1:5432/{make_url(postgres_url).database}" in out
        assert "gRPC storage proxy stopped" in out


def _open(url, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return open_storage(url, **kwargs)


@pytest.mark.slow
def test_grpc_eight_workers_end_with_exactly_n_trials_each_number_once(proxy, in_tmp):
    url, database = proxy
    n_trials = 16
    proc = subprocess.run([sys.executable, "-m", "sweeps", *TINY, f"sweep.n_trials={n_trials}", "sweep.n_workers=8",
                           f"sweep.storage={url}", "sweep.study_name=grpc8"], cwd=in_tmp, env=subprocess_env(),
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "started 8 worker processes" in proc.stdout
    assert "Traceback" not in proc.stderr
    study = optuna.load_study(study_name="grpc8", storage=database)  # straight from the database
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(len(trials))), "every trial number once, none missing"
    assert all(t.state.is_finished() for t in trials)
    assert count_trials(study) == (n_trials, 0)
    counted = [t for t in trials if end_reason(t) not in ("surplus",) and "retry_of" not in t.user_attrs]
    assert len(counted) == n_trials
    reasons = [end_reason(t) for t in counted]
    assert not {"failed: exception", "failed: stale", "interrupted"} & set(reasons), reasons
    seeds = [t.user_attrs["seed"] for t in counted if "seed" in t.user_attrs]
    assert len(seeds) == len(set(seeds)), "no trial ran twice"
    assert all(HEARTBEAT_ATTR in t.system_attrs for t in counted), "every trial sent heartbeats through the proxy"
    assert SECRET not in proc.stdout + proc.stderr


@pytest.mark.filterwarnings("ignore:Heartbeat of storage", "ignore::optuna.exceptions.ExperimentalWarning")
def test_grpc_stale_trial_is_failed_and_retried_through_the_proxy(proxy):
    url, _ = proxy
    storage = _open(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="stale")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    tid = trial_id(study, trial)
    storage.record_heartbeat(tid)
    assert storage._get_stale_trial_ids(study_id(study)) == []  # Optuna's heartbeat base (sweeps/storage/_journal.py)
    storage.set_trial_system_attr(tid, HEARTBEAT_ATTR, [tid, time.time() - 60])  # its worker died
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL and end_reason(trials[0]) == "failed: stale"
    assert trials[1].state == TrialState.WAITING and trials[1].user_attrs["retry_of"] == 0
    assert trials[1].params == trials[0].params


def test_grpc_storage_form_is_checked_and_names_no_file():
    assert grpc_address("grpc://proxy.example:13000") == ("proxy.example", 13000)
    check_storage("grpc://127.0.0.1:13000")
    assert storage_file("grpc://127.0.0.1:13000") is None
    for bad in ("grpc://127.0.0.1", "grpc://:13000", "grpc://h:0", "grpc://h:99999", "grpc://h:port",
                "grpc://u:s3cretPW@h:13000", "grpc://h:13000/db"):
        with pytest.raises(ConfigError, match="sweep.storage must be grpc://HOST:PORT") as info:
            check_storage(bad)
        assert SECRET not in str(info.value)


def test_grpc_dashboard_command_names_the_database_not_the_proxy():
    command = dashboard_command("grpc://127.0.0.1:13000", "artifacts")
    assert command.startswith("optuna-dashboard DATABASE_URL --artifact-dir artifacts")
    assert "cannot open grpc://" in command


def test_grpc_unreachable_proxy_is_one_storage_error_at_once():
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(StorageError, match=f"no proxy listens at 127.0.0.1:{port}"):
        probe_storage(f"grpc://127.0.0.1:{port}")
    assert time.monotonic() - started < 5, "a closed port is refused at once, not after the gRPC timeout"


def test_grpc_port_that_speaks_no_grpc_is_a_storage_error():
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts TCP, never answers HTTP/2
        port = server.getsockname()[1]
        with pytest.raises(StorageError, match="does not answer gRPC"):
            probe_storage(f"grpc://127.0.0.1:{port}", connect_timeout_s=1)


@pytest.mark.parametrize("storage, extra, code, key", [
    pytest.param("study.journal", [], 2, "--storage", id="journal-file"),
    pytest.param("grpc://127.0.0.1:13000", [], 2, "--storage", id="another-proxy"),
    pytest.param(f"postgresql://postgres:{SECRET}@127.0.0.1:1/db", [], 4, "--storage", id="database-unreachable"),
    pytest.param("sqlite:///x.db", ["--threads", "0"], 2, "--threads", id="threads-zero"),
])
def test_proxy_bad_input_is_one_masked_line(storage, extra, code, key, tmp_path):
    port = _free_port()
    done = subprocess.run(_proxy_command(storage, port, *extra), env=subprocess_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_proxy_port_in_use_is_one_line(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        done = subprocess.run(_proxy_command(f"sqlite:///{tmp_path}/s.db", port), env=subprocess_env(),
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: --host 127.0.0.1 --port {port}: cannot listen there (Address already in "
                                   "use); choose another port or stop what holds it")


def test_grpc_wait_until_serving_gives_up_when_the_proxy_process_ended():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    assert wait_until_serving(f"grpc://127.0.0.1:{_free_port()}", proc, timeout_s=60) is False
