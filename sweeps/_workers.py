"""Several worker processes on one study (``sweep.n_workers``), each recycled after
``sweep.trials_per_worker`` trials and restarted if it dies."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time

import optuna

from sweeps._experiment import Experiment

__all__ = ["run_workers", "worker_main"]

_POLL_SECONDS = 0.5


def _gpu_for(index: int) -> str | None:
    import torch

    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return str(index % n_gpus) if n_gpus else None


def worker_main(overrides: list[str], index: int, n_threads: int, gpu: str | None, max_trials: int | None) -> None:
    """Entry point of one worker process: pin its GPU and threads, then run trials."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before CUDA initializes in this process
    import torch

    torch.set_num_threads(n_threads)
    from sweeps._driver import run_trials, storage_for
    from sweeps._experiment import prepare
    from sweeps._study import open_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    exp, data = prepare(overrides)
    study = open_study(exp, storage_for(exp), worker=index + 1)
    sys.exit(run_trials(exp, data, study, max_trials=max_trials, prefix=f"w{index} "))


def run_workers(exp: Experiment, study: optuna.Study) -> int:
    """Starts ``sweep.n_workers`` processes and keeps them going until the study is complete.

    Returns:
        EXIT_OK, or the first non-zero exit code a worker reported (other than recycling).
    """
    from sweeps._driver import EXIT_OK, EXIT_RECYCLE, _say
    from sweeps._study import count_trials

    sweep = exp.cfg.sweep
    n_threads = exp.cfg.trainer.num_threads or max(1, (os.cpu_count() or 1) // sweep.n_workers)
    context = multiprocessing.get_context("spawn")

    def start(index: int) -> multiprocessing.Process:
        args = (exp.overrides, index, n_threads, _gpu_for(index), sweep.trials_per_worker)
        process = context.Process(target=worker_main, args=args, name=f"sweeps-worker-{index}")
        process.start()
        return process

    processes = {i: start(i) for i in range(sweep.n_workers)}
    _say(f"started {sweep.n_workers} worker processes with {n_threads} torch threads each")
    code, restarts = EXIT_OK, 0
    while processes:
        time.sleep(_POLL_SECONDS)
        for index, process in list(processes.items()):
            if process.is_alive():
                continue
            del processes[index]
            exitcode = process.exitcode
            finished, _ = count_trials(study)
            wanted = finished < sweep.n_trials and code == EXIT_OK
            if exitcode == EXIT_RECYCLE and wanted:
                processes[index] = start(index)
            elif exitcode is not None and exitcode < 0 and wanted and restarts < sweep.n_trials:
                _say(f"worker {index} died (signal {-exitcode}); its trial is retried once stale; restarting it")
                restarts += 1
                processes[index] = start(index)
            elif exitcode not in (EXIT_OK, EXIT_RECYCLE) and code == EXIT_OK:
                code = exitcode if exitcode and exitcode > 0 else EXIT_OK
    return code
