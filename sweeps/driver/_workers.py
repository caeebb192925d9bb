"""Several worker processes on one study (``sweep.n_workers``), each recycled after
``sweep.trials_per_worker`` trials and restarted if it dies.

Start-up: workers fork from multiprocessing's fork server, which imports torch, Optuna and the
driver once per command (``_PRELOAD``, sweeps.driver._preload: frozen for the garbage collector);
a worker then starts in a fraction of a second instead of the
3-5 s of CPU a spawned interpreter spends importing them, which every worker, each recycled or
restarted one and each worker of the selection round paid again. A worker takes its parent's
environment at its start (the fork server keeps the one of its own start; multiprocessing itself
moves the worker to its parent's working folder). Where the platform has no fork server, workers are
spawned.

Signals: the parent forwards SIGINT/SIGTERM to its workers (Ctrl-C reaches the whole process group
anyway), waits for them to end their trials as ``interrupted``, then exits 130/143. Workers end
themselves when their parent dies, even by SIGKILL: the kernel sends them SIGTERM
(``PR_SET_PDEATHSIG`` on Linux), and a thread that waits on the parent's sentinel does so everywhere.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

import optuna

from sweeps._exit import EXIT_OK, EXIT_RECYCLE, EXIT_SIGINT, EXIT_SIGTERM
from sweeps._interrupt import Interrupted, deferred, handling_signals, ignoring_signals, n_signals
from sweeps._say import say
from sweeps.driver._loop import run_trials, storage_for
from sweeps.experiment._experiment import Experiment
from sweeps.trial._report import remove_scratch

__all__ = ["die_with_parent", "run_workers", "worker_main"]

# Imported once by the fork server, before any worker forks from it (what, and why: its docstring).
_PRELOAD = ["sweeps.driver._preload"]
_POLL_SECONDS = 0.5
_STOP_GRACE_SECONDS = 60.0  # after a signal, how long workers get to end their trials before SIGKILL
_PR_SET_PDEATHSIG = 1
_SIGNAL_EXITS = {EXIT_SIGINT: signal.SIGINT, EXIT_SIGTERM: signal.SIGTERM}


def _gpu_for(index: int) -> str | None:
    import torch

    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return str(index % n_gpus) if n_gpus else None


def die_with_parent() -> None:
    """Sends this process SIGTERM when its parent process dies, however it dies."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the thread below still watches
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent's end of the sentinel pipe closes: it died or exited
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="sweeps-parent-watch", daemon=True).start()


def worker_main(overrides: list[str], index: int, n_threads: int, gpu: str | None, max_trials: int | None,
                linked: bool = False, environ: dict[str, str] | None = None) -> None:
    """Entry point of one worker process: pin its GPU and threads, then run trials.

    It starts with SIGINT and SIGTERM ignored (inherited from its parent) and handles them from here.
    ``environ`` is the parent's at the worker's start (the user's variables); a worker forked from
    the fork server would otherwise have the server's.
    """
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    with handling_signals():
        die_with_parent()
        try:
            sys.exit(_work(overrides, index, n_threads, gpu, max_trials, linked))
        except Interrupted as exc:
            # The parent prints the one line about it; the trial was queued again.
            sys.exit(exc.exit_code)
        finally:
            remove_scratch()


def _work(overrides: list[str], index: int, n_threads: int, gpu: str | None, max_trials: int | None,
          linked: bool) -> int:
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before CUDA initializes in this process
    import torch

    torch.set_num_threads(n_threads)
    from sweeps.experiment._experiment import prepare
    from sweeps.study._study import open_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The parent built every probe of the space and probed the storage with these same overrides.
    exp, data = prepare(overrides, probe=False, build_probes=False)
    storage = storage_for(exp)
    if linked:  # the seed-robust selection's re-trainings (sweeps/study/_select.py), already enqueued
        from sweeps.study._select import load_linked

        selection = load_linked(exp, storage, worker=index + 1)
        exp, study = selection.exp, selection.study
    else:
        study = open_study(exp, storage, worker=index + 1)
    prefix = f"w{index} select " if linked else f"w{index} "
    return run_trials(exp, data, study, max_trials=max_trials, prefix=prefix, storage=storage)


def _signal(process: multiprocessing.Process, signum: int) -> None:
    try:
        os.kill(process.pid, signum)
    except (ProcessLookupError, TypeError):
        pass  # already gone, or never started


def _stop(processes: dict[int, multiprocessing.Process], signum: int) -> None:
    """Forwards ``signum`` to the workers and waits for them to end their trials. The signal is sent
    again every poll, since a worker still starting up ignores it; a second signal to the parent, or
    the grace period running out, kills them (their trials then go stale and are retried)."""
    deadline = time.monotonic() + _STOP_GRACE_SECONDS
    first = n_signals()
    while any(p.is_alive() for p in processes.values()):
        if time.monotonic() > deadline or n_signals() > max(first, 1):
            for process in processes.values():
                process.kill()
            break
        for process in processes.values():
            if process.is_alive():
                _signal(process, signum)
        for process in processes.values():
            process.join(_POLL_SECONDS / len(processes))
    for process in processes.values():
        process.join()


def _context() -> multiprocessing.context.BaseContext:
    """The fork server's context, preloading what workers import; spawn where there is none."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)  # read when the server starts: the first worker of this process
    return context


def run_workers(exp: Experiment, study: optuna.Study, linked: bool = False) -> int:
    """Starts ``sweep.n_workers`` processes and keeps them going until the study is complete.

    With ``linked``, ``study`` is the linked study of seed-robust selection and ``exp`` its experiment.

    Returns:
        EXIT_OK, or the first non-zero exit code a worker reported (other than recycling).

    Raises:
        Interrupted: SIGINT/SIGTERM reached the parent or a worker; all workers have ended.
    """
    from sweeps.experiment._build import n_threads as n_threads_for
    from sweeps.study._study import count_trials

    sweep = exp.cfg.sweep
    n_threads = n_threads_for(exp.cfg)  # each trial refines it from its model's size (sweeps.experiment._threads)
    context = _context()
    processes: dict[int, multiprocessing.Process] = {}

    def start(index: int) -> None:
        args = (exp.overrides, index, n_threads, _gpu_for(index), sweep.trials_per_worker, linked, dict(os.environ))
        process = context.Process(target=worker_main, args=args, name=f"sweeps-worker-{index}")
        # The worker inherits it until it installs its own handlers; so does the fork server, started by
        # the first start() of this process, and every worker forked from it.
        with ignoring_signals():
            process.start()
            processes[index] = process

    code, restarts = EXIT_OK, 0
    try:
        for i in range(sweep.n_workers):
            start(i)
        say(f"started {sweep.n_workers} worker processes with {n_threads} torch threads each")
        while processes:
            time.sleep(_POLL_SECONDS)
            for index, process in list(processes.items()):
                if process.is_alive():
                    continue
                del processes[index]
                exitcode = process.exitcode
                if exitcode in _SIGNAL_EXITS:
                    raise Interrupted(_SIGNAL_EXITS[exitcode])  # someone signalled a worker: stop them all
                finished, _ = count_trials(study)
                wanted = finished < sweep.n_trials and code == EXIT_OK
                if exitcode == EXIT_RECYCLE and wanted:
                    start(index)
                elif exitcode is not None and exitcode < 0 and wanted and restarts < sweep.n_trials:
                    say(f"worker {index} died (signal {-exitcode}); its trial is retried once stale; restarting it")
                    restarts += 1
                    start(index)
                elif exitcode not in (EXIT_OK, EXIT_RECYCLE) and code == EXIT_OK:
                    code = exitcode if exitcode and exitcode > 0 else EXIT_OK
    except Interrupted as exc:
        with deferred():  # a signal to the parent meanwhile only counts (a second one kills the workers)
            _stop(processes, exc.signum)
        raise
    return code
