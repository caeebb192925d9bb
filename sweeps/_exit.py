"""The exit codes of ``python -m sweeps`` and its sub-commands, in one place (README, "Exit codes")."""

__all__ = [
    "EXIT_OK", "EXIT_FAILURES", "EXIT_CONFIG", "EXIT_UNFIXABLE", "EXIT_STORAGE", "EXIT_NO_COMPLETED",
    "EXIT_RECYCLE", "EXIT_SIGINT", "EXIT_SIGTERM",
]

EXIT_OK = 0  # done: the study holds sweep.n_trials finished trials, exported
EXIT_FAILURES = 1  # stopped: more than sweep.max_failure_rate of the finished trials failed
EXIT_CONFIG = 2  # bad input, or an action the vault refuses: nothing was run or written (or the
# exports became unwritable during the run: trials kept, vault sealed)
EXIT_UNFIXABLE = 3  # stopped: a preflight check failed that no searched key can fix
EXIT_STORAGE = 4  # the storage cannot be reached or opened (not a config error: retry when it is back)
EXIT_NO_COMPLETED = 5  # trials ran, none completed (all pruned or failed): trials.csv written, no best.yaml
EXIT_RECYCLE = 75  # internal: a worker process that ran sweep.trials_per_worker trials and wants replacing
EXIT_SIGINT = 130  # interrupted by Ctrl-C (128 + SIGINT): rerun the same command to resume
EXIT_SIGTERM = 143  # stopped by SIGTERM (128 + SIGTERM; SLURM, Kubernetes): rerun to resume
