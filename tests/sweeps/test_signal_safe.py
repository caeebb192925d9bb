"""A Ctrl-C or SIGTERM never cuts a storage call in half (sweeps/storage/_signal_safe.py), and a
deferred block in another thread never holds the main thread's signal (sweeps/_interrupt.py)."""

import os
import signal
import threading

import optuna
import pytest

from sweeps._interrupt import Interrupted, deferred, handling_signals
from sweeps.storage import study_id, trial_id
from sweeps.storage._signal_safe import SignalSafeStorage
from sweeps.storage._url import open_storage


class _SignalledMidCall(optuna.storages.InMemoryStorage):
    """A storage whose attribute write takes a signal halfway, as a commit can."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum
        self.steps: list[str] = []

    def set_trial_user_attr(self, trial_id: int, key: str, value: object) -> None:
        self.steps.append("began")
        os.kill(os.getpid(), self.signum)  # the handler runs at the next bytecode: here
        self.steps.append("wrote")
        super().set_trial_user_attr(trial_id, key, value)


def _trial(storage: optuna.storages.BaseStorage) -> tuple[optuna.Study, optuna.Trial]:
    study = optuna.create_study(storage=storage, study_name="s")
    return study, study.ask()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_safe_storage_raises_the_signal_once_the_call_has_returned(signum):
    backend = _SignalledMidCall(signum)
    study, trial = _trial(SignalSafeStorage(backend))
    with handling_signals(), pytest.raises(Interrupted) as raised:
        trial.set_user_attr("kept", 7)
    assert (raised.value.signum, backend.steps) == (signum, ["began", "wrote"])
    assert study.trials[0].user_attrs == {"kept": 7}


def test_signal_safe_storage_without_the_wrapper_the_signal_cuts_the_call():
    # What the wrapper prevents: the same storage, called directly, stops between its two steps.
    backend = _SignalledMidCall(signal.SIGINT)
    study, trial = _trial(backend)
    with handling_signals(), pytest.raises(Interrupted):
        trial.set_user_attr("kept", 7)
    assert (backend.steps, study.trials[0].user_attrs) == (["began"], {})


def test_signal_safe_storage_forwards_every_storage_and_heartbeat_call(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=5)
    assert isinstance(storage, SignalSafeStorage) and isinstance(storage.backend, optuna.storages.RDBStorage)
    study, trial = _trial(storage)
    storage.record_heartbeat(trial_id(study, trial))
    assert storage.get_heartbeat_interval() == 5 and storage._get_stale_trial_ids(study_id(study)) == []
    study.tell(trial, 0.5)
    assert [t.value for t in optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db").trials] == [0.5]
    journal = open_storage(str(tmp_path / "s.journal"), heartbeat_interval=7)
    assert journal.get_heartbeat_interval() == 7
    assert SignalSafeStorage(optuna.storages.InMemoryStorage()).get_heartbeat_interval() is None


def test_deferred_in_another_thread_leaves_the_main_threads_signal_alone():
    # The heartbeat thread's storage calls are deferred blocks too: they must not hold (or raise
    # in their own thread) a Ctrl-C that reaches the main thread meanwhile.
    inside, release = threading.Event(), threading.Event()
    raised_there: list[BaseException] = []

    def beat() -> None:
        try:
            with deferred():
                inside.set()
                release.wait(60)
        except BaseException as exc:  # noqa: BLE001 - what the test looks for
            raised_there.append(exc)

    thread = threading.Thread(target=beat)
    thread.start()
    try:
        assert inside.wait(60)
        with handling_signals(), pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # bytecodes for the handler to run at
                pass
    finally:
        release.set()
        thread.join(60)
    assert raised_there == []
