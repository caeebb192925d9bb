"""Ctrl-C, SIGTERM and a killed parent: one line, exit 130/143, the trial queued again and resumed.

The tests wait for a trial to train (an intermediate value in the storage) by polling the storage,
never with fixed sleeps, and use timeouts generous enough for a busy machine.
"""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.__main__ import main
from sweeps._interrupt import Interrupted
from sweeps.storage._url import open_storage
from sweeps.study._study import count_trials, end_reason
from tests.helpers import subprocess_env

pytestmark = pytest.mark.slow
N_TRIALS = 2
MAX_EPOCHS = 100
# 100 epochs of a small MLP: a trial still trains when the signal arrives a poll after its first epoch.
ARGS = [f"sweep.n_trials={N_TRIALS}", f"trainer.max_epochs={MAX_EPOCHS}", "trainer.num_threads=1", "monitor=off",
        "preflight=off", "select=off", "sweep.pruner=none", "model.width=32",
        "+search.optimizer.lr={type:float,low:0.01,high:0.1}"]
TIMEOUT_S = 600


def _start(args, cwd):
    # A session of its own, as a terminal's foreground job: os.killpg reaches the command and its workers.
    return subprocess.Popen([sys.executable, "-m", "sweeps", *args], cwd=cwd, env=subprocess_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _storage(storage: str, cwd: Path):
    if "://" in storage:
        return storage.replace("sqlite:///", f"sqlite:///{cwd}/")
    return open_storage(str(cwd / storage))


def _made(storage) -> bool:
    """Whether the sweep has made its SQLite file's study: opening the file before that would make it
    here, racing the sweep's own table creation, which only sweeps' processes serialize."""
    if not isinstance(storage, str):
        return True
    path = storage.removeprefix("sqlite:///")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT 1 FROM studies WHERE study_name = 'sweeps'").fetchone() is not None
    except sqlite3.Error:
        return False


def _wait_for_training(proc, storage, n_running=1):
    """The running trials once ``n_running`` of them have reported an epoch."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the sweep ended early: {proc.communicate()}"
        time.sleep(0.1)
        if not _made(storage):
            continue
        try:
            study = optuna.load_study(study_name="sweeps", storage=storage)
        except KeyError:
            continue
        running = [t for t in study.get_trials(states=(TrialState.RUNNING,)) if t.intermediate_values]
        if len(running) >= n_running:
            return running
    raise AssertionError("no trial started training in time")


def _check_one_line(out, err, code):
    text = out + err
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if "interrupt" in line.lower()]
    assert len(lines) == 1, text
    name = "SIGINT" if code == 130 else "SIGTERM"
    assert lines[0] == f"interrupted by {name}; rerun the same command to resume"


def _check_queued_again(storage, victims):
    """Each interrupted trial is failed as ``interrupted`` and queued again with its params and seed.

    With two workers, one may start seconds after the other on a busy machine: the first worker's
    trial can then reach its last epoch between the poll that saw both training and the signal. Such
    a trial is complete after all its epochs and not queued again; at least one trial is interrupted.
    """
    trials = optuna.load_study(study_name="sweeps", storage=storage).get_trials()
    retries = {}
    for victim in victims:
        trial = trials[victim.number]
        if trial.state == TrialState.COMPLETE:
            assert len(trial.intermediate_values) == MAX_EPOCHS, trial
            continue
        assert trial.state == TrialState.FAIL and end_reason(trial) == "interrupted"
        queued = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
        assert len(queued) == 1 and queued[0].state == TrialState.WAITING
        assert queued[0].params == victim.params and queued[0].user_attrs["seed"] == victim.user_attrs["seed"]
        retries[victim.number] = queued[0].number
    assert retries, "no trial was interrupted"
    study = optuna.load_study(study_name="sweeps", storage=storage)
    assert count_trials(study)[0] == len(victims) - len(retries), "interrupted trials do not count"
    return retries


def _check_resumed(storage, victims, retries):
    study = optuna.load_study(study_name="sweeps", storage=storage)
    trials = study.get_trials()
    for victim in victims:
        if victim.number not in retries:
            continue
        retry = trials[retries[victim.number]]
        assert retry.state == TrialState.COMPLETE
        assert retry.params == victim.params and retry.user_attrs["seed"] == victim.user_attrs["seed"]
    assert count_trials(study) == (N_TRIALS, 0)
    assert all(t.state.is_finished() for t in trials)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_trial_prints_one_line_exits_and_the_trial_resumes(in_tmp, signum, code):
    storage = _storage("sqlite:///sweeps.db", in_tmp)
    proc = _start(ARGS, in_tmp)
    victims = _wait_for_training(proc, storage)
    os.killpg(proc.pid, signum)  # Ctrl-C reaches the whole foreground process group
    out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == code, out + err
    _check_one_line(out, err, code)
    retries = _check_queued_again(storage, victims)
    assert main(ARGS) == 0
    _check_resumed(storage, victims, retries)


@pytest.mark.parametrize("signum, code, whom", [(signal.SIGINT, 130, "group"), (signal.SIGTERM, 143, "parent")])
def test_two_workers_interrupted_end_both_trials_and_exit_once(in_tmp, signum, code, whom):
    """Ctrl-C reaches the parent and its workers at once; SIGTERM (SLURM, Kubernetes, kill) may reach
    the parent only, which forwards it."""
    args = [*ARGS, "sweep.n_workers=2", "sweep.storage=sweeps.journal"]
    storage = _storage("sweeps.journal", in_tmp)
    proc = _start(args, in_tmp)
    victims = _wait_for_training(proc, storage, n_running=2)
    if whom == "group":
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == code, out + err
    _check_one_line(out, err, code)
    retries = _check_queued_again(storage, victims)
    assert main([*ARGS, "sweep.storage=sweeps.journal"]) == 0
    _check_resumed(storage, victims, retries)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is missing


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _workers(pid: int) -> list[int]:
    """The worker processes of the command ``pid``: children of its multiprocessing fork server
    (workers fork from it), or its own children where they were spawned."""
    workers = []
    for child in _children(pid):
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"forkserver" in command:
            workers += _children(child)
        elif b"spawn_main" in command:
            workers.append(child)
    return workers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed(in_tmp):
    args = [*ARGS, "sweep.n_workers=2", "sweep.storage=sweeps.journal"]
    storage = _storage("sweeps.journal", in_tmp)
    proc = _start(args, in_tmp)
    victims = _wait_for_training(proc, storage, n_running=2)
    children = _workers(proc.pid) + _children(proc.pid)  # the workers, the fork server, its resource tracker
    assert len(_workers(proc.pid)) == 2, "both workers are found"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=TIMEOUT_S)
    deadline = time.monotonic() + 120
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in children), "workers outlived their parent"
    retries = _check_queued_again(storage, victims)
    assert main([*ARGS, "sweep.storage=sweeps.journal"]) == 0
    _check_resumed(storage, victims, retries)


def test_interrupt_while_opening_the_vault_says_how_to_finish_the_opening(in_tmp, monkeypatch, capsys):
    import sweeps.vault._open as vault_open
    from sweeps.vault import Vault

    def interrupted(*args, **kwargs):
        raise Interrupted(signal.SIGINT)

    monkeypatch.setattr(vault_open, "_final_model", interrupted)  # after the claim, before any result
    fast = ["sweep.n_trials=1", "trainer.max_epochs=1", "trainer.num_threads=1", "monitor=off", "preflight=off",
            "+search.optimizer.lr={type:float,low:0.01,high:0.1}"]
    assert main(fast) == 130
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "interrupt" in line]
    expected = ("interrupted while opening the test vault: opening #1 of study 'sweeps' is claimed and holds no "
                "result; rerun the same command with vault.reopen=true to open it (recorded as forced in the "
                "audit list)")
    assert lines == [expected]
    study = optuna.load_study(study_name="sweeps", storage="sqlite:///sweeps.db")
    assert Vault(study).state() == "claimed"
