"""Destination checks: a folder that can be written passes, even while other commands check it too."""

import multiprocessing
import tempfile
from pathlib import Path

from sweeps._errors import ConfigError
from sweeps.config import _destinations
from sweeps.config._destinations import check_destinations, unwritable


def test_destinations_unwritable_leaves_nothing_behind(in_tmp):
    assert unwritable(in_tmp / "a" / "b") is None
    assert list(in_tmp.iterdir()) == []


def test_destinations_a_folder_another_command_creates_meanwhile_passes_and_stays(in_tmp, monkeypatch):
    target = in_tmp / "exports" / "study"
    real_mkdir = Path.mkdir

    def racing_mkdir(self, *args, **kwargs):
        if self == target:
            real_mkdir(self)  # the other command got there first
            raise FileExistsError(17, "File exists", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", racing_mkdir)
    assert unwritable(target) is None
    assert target.is_dir()  # the other command's folder: not this check's to remove
    assert list(target.iterdir()) == []


def test_destinations_a_folder_another_check_removes_meanwhile_is_probed_again(in_tmp, monkeypatch):
    target = in_tmp / "exports" / "study"
    real_mkstemp = tempfile.mkstemp
    calls = []

    def racing_mkstemp(*args, **kwargs):
        calls.append(kwargs["dir"])
        if len(calls) == 1:
            Path(kwargs["dir"]).rmdir()  # the other check removed the folder it had created
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(_destinations.tempfile, "mkstemp", racing_mkstemp)
    assert unwritable(target) is None
    assert len(calls) == 2
    assert list(in_tmp.iterdir()) == []


def test_destinations_a_folder_that_keeps_vanishing_is_reported_not_raised(in_tmp, monkeypatch):
    def vanished(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(_destinations.tempfile, "mkstemp", vanished)
    assert unwritable(in_tmp / "x") == "No such file or directory"


def _check_many(root: str, barrier, rounds: int, results) -> None:
    problems = []
    for round_ in range(rounds):
        barrier.wait()
        try:
            check_destinations(Path(root) / "exports", f"study-{round_}", f"sqlite:///{root}/db/s.db", None)
        except ConfigError as exc:
            problems.append(str(exc))
    results.put(problems)


def test_destinations_commands_started_at_once_all_pass(in_tmp):
    n_processes, rounds = 4, 25
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(n_processes), context.Queue()
    processes = [context.Process(target=_check_many, args=(str(in_tmp), barrier, rounds, results))
                 for _ in range(n_processes)]
    for process in processes:
        process.start()
    problems = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert problems == [[]] * n_processes
    # no probe file is left; a folder two checks created at once may stay (empty) for the run to use
    assert [path for path in in_tmp.rglob("*") if not path.is_dir()] == []
