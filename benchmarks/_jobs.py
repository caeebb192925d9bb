"""Runs benchmark jobs in one process, in the order given, and writes their measurements as JSON.

    python -m benchmarks._jobs JOBS.json OUT.json

The harness starts this once per section, so that the interpreter and its imports (several seconds
here) are paid once and the jobs of the compared variants interleave in one process. Job kinds:

- ``sweep``: ``python -m sweeps`` (``sweeps.__main__.main``) with the given overrides. The trial
  loop, the time inside trial training and the vault opening are timed by wrapping the driver's own
  functions; with ``budget_epochs`` (and ``max_epochs``) the study gets no further trial once another
  full trial could pass the budget; with seed-robust selection on, the selection's re-trainings
  (``select.top_k * select.n_seeds`` full trials at most) are kept out of the search's share first.
- ``bare``: a plain Optuna loop on digits_cnn's search space calling ``practices.train.fit``.
- ``plain``: the plain Optuna TPE script (``benchmarks/plain_optuna.py``).
- ``hos``: a hydra-optuna-sweeper multirun in its own virtual environment (``benchmarks/efficiency.py``).
- ``throughput``: samples per second of several training loops on one model and data.

Every job's result has its CPU seconds (``cpu_s``: this process's, plus its child processes') and
wall seconds (``job_s``).
"""

from __future__ import annotations

import contextlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


class _Meter:
    """What the wrapped driver functions measured during one sweep job."""

    def __init__(self) -> None:
        self.reset(None, None)

    def reset(self, budget_epochs: int | None, max_epochs: int | None) -> None:
        self.budget_epochs, self.max_epochs, self.epochs, self.select_epochs = budget_epochs, max_epochs, 0, 0
        self.train_s = self.loop_s = self.vault_s = self.checks_s = 0.0
        self.n_trials = 0

    def after_trial(self, exp: Any, trial: Any) -> None:
        self.n_trials += 1
        if self.budget_epochs is None:
            return
        frozen = trial.study._storage.get_trial(trial._trial_id)  # cheap: one trial, not the study
        if trial.study.study_name.endswith(".select"):  # a re-training of seed-robust selection
            self.select_epochs += trial_epochs(frozen)
            return
        self.epochs += trial_epochs(frozen)
        if self.epochs + (self.max_epochs or 0) > self.budget_epochs - select_reserve(exp.cfg, self.max_epochs):
            # run_trials reads sweep.n_trials before each trial: 0 ends the loop as a full study would;
            # the driver then selects (select on), opens the vault and exports as after a full study.
            exp.cfg.sweep.n_trials = 0


def select_reserve(cfg: Any, max_epochs: int | None) -> int:
    """Epochs that seed-robust selection trains at most (0 with select=off or no such group)."""
    select = cfg.get("select")
    if not select or not select.get("enabled") or max_epochs is None:
        return 0
    return int(select.top_k) * int(select.n_seeds) * max_epochs


METER = _Meter()

# Storage calls, counted in every job (a figure that does not depend on the machine's load): a write
# is a commit, of 1-3 ms on SQLite on an idle disk.
STORAGE_WRITES = ("create_new_trial", "set_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
                  "set_trial_user_attr", "set_trial_system_attr", "set_study_user_attr", "set_study_system_attr",
                  "record_heartbeat")
STORAGE_READS = ("get_trial", "get_all_trials", "get_study_user_attrs", "get_study_system_attrs", "get_best_trial",
                 "get_trial_id_from_study_id_trial_number", "get_study_id_from_name", "get_n_trials")
CALLS = {"writes": 0, "reads": 0}


def _count_storage_calls() -> None:
    from optuna.storages import RDBStorage

    def counted(function: Any, kind: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            CALLS[kind] += 1
            return function(*args, **kwargs)

        return wrapper

    for kind, names in (("writes", STORAGE_WRITES), ("reads", STORAGE_READS)):
        for name in names:
            setattr(RDBStorage, name, counted(getattr(RDBStorage, name), kind))


def trial_epochs(frozen: Any) -> int:
    """Epochs a finished trial trained: one per reported value, plus the epoch that diverged."""
    return len(frozen.intermediate_values) + (1 if frozen.user_attrs.get("fail_epoch") else 0)


def _timed(function: Any, field: str) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            setattr(METER, field, getattr(METER, field) + time.perf_counter() - started)

    return wrapper


def _install_meter() -> None:
    """Wraps the driver's trial loop, trial training and vault opening with timers."""
    import sweeps.driver._driver as driver
    import sweeps.driver._loop as loop
    import sweeps.trial._objective as objective
    import sweeps.trial._preflight as preflight

    objective.train = _timed(objective.train, "train_s")
    preflight.run_checks = _timed(preflight.run_checks, "checks_s")  # the checks themselves, not their cache
    driver.run_trials = _timed(driver.run_trials, "loop_s")
    driver.open_when_due = _timed(driver.open_when_due, "vault_s")

    class MeteredObjective(loop.Objective):
        def __call__(self, trial: Any) -> float:
            try:
                return super().__call__(trial)
            finally:
                METER.after_trial(self.experiment, trial)

    loop.Objective = MeteredObjective


def _study_trials(storage: str, study_name: str | None = None) -> list[dict[str, Any]]:
    """Each trial of the study ``study_name`` in ``storage`` (the only one when None), in order:
    its per-epoch values and epochs; then those of its linked selection study, marked ``select``."""
    import optuna

    if study_name is None:
        study_name = optuna.get_all_study_summaries(storage)[0].study_name
    names = [n for n in optuna.get_all_study_names(storage) if n in (study_name, f"{study_name}.select")]
    out = []
    for name in sorted(names, key=len):  # the study, then its linked one
        study = optuna.load_study(study_name=name, storage=storage)
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
            values = [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
            out.append({"number": t.number, "state": t.state.name, "values": values, "epochs": trial_epochs(t),
                        "phase": "select" if name != study_name else "search"})
    return out


def _shipped(export_dir: str, study_name: str) -> dict[str, Any] | None:
    """The vault's result in ``test_result.json``: the shipped trial and its sealed test accuracy."""
    path = Path(export_dir) / study_name / "test_result.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text())["result"]
    return {"trial": result["trial"], "val_accuracy": result["val_value"],
            "test_accuracy": result["test"]["test_accuracy"], "epochs": result.get("epochs"),
            "seed": result.get("seed"), "selected": "selection" in result}


def run_sweep(job: dict[str, Any]) -> dict[str, Any]:
    from sweeps.__main__ import main

    METER.reset(job.get("budget_epochs"), job.get("max_epochs"))
    log = Path(job["folder"]) / "sweep.log"
    started = time.perf_counter()
    with open(log, "a") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(job["overrides"])
    main_s = time.perf_counter() - started
    if job.get("budget_epochs") is not None and METER.n_trials == 0:
        raise RuntimeError("the epoch budget was never checked: sweeps.driver._loop no longer builds its Objective "
                           "by that name; adapt benchmarks._jobs._install_meter")
    result = {"code": code, "main_s": main_s, "loop_s": METER.loop_s, "train_s": METER.train_s,
              "vault_s": METER.vault_s, "checks_s": METER.checks_s, "n_trials": METER.n_trials}
    if job.get("storage"):
        result["trials"] = _study_trials(job["storage"], job.get("study"))
    if job.get("study"):
        result["shipped"] = _shipped(job["export_dir"], job["study"])
    return result


def run_bare(job: dict[str, Any]) -> dict[str, Any]:
    from benchmarks._bare import bare_loop

    if job.get("wal"):  # the file as sweeps makes a new one: write-ahead log
        from sweeps.storage._url import _write_ahead_log

        _write_ahead_log(job["storage"].removeprefix("sqlite:///"))
    return bare_loop(job["storage"], job["n_trials"], job["max_epochs"], job["seed"])


def run_plain(job: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.plain_optuna import run

    return run(job["experiment"], job["seed"], job["budget_epochs"], job["max_epochs"])


def run_hos(job: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.efficiency import hos_job

    return hos_job(job)


def run_throughput(job: dict[str, Any]) -> dict[str, Any]:
    from benchmarks._loops import measure_throughput

    return measure_throughput(job)


RUNNERS = {"sweep": run_sweep, "bare": run_bare, "plain": run_plain, "hos": run_hos, "throughput": run_throughput}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(jobs_path: str, out_path: str) -> None:
    started = time.perf_counter()
    import torch

    import sweeps.experiment._experiment  # noqa: F401  (torch, optuna, hydra, scikit-learn: what a sweep imports)

    _install_meter()
    _count_storage_calls()
    jobs = json.loads(Path(jobs_path).read_text())
    results = {"imports_s": time.perf_counter() - started, "jobs": []}
    for job in jobs:
        torch.set_num_threads(job.get("num_threads", 1))
        CALLS.update(writes=0, reads=0)
        cpu, children, wall = time.process_time(), _children_cpu(), time.perf_counter()
        result = RUNNERS[job["kind"]](job)
        result.update(cpu_s=time.process_time() - cpu + _children_cpu() - children, job_s=time.perf_counter() - wall)
        if isinstance(result, dict):
            result["storage_calls"] = dict(CALLS)
        results["jobs"].append({"job": job, "result": result})
        Path(out_path).write_text(json.dumps(results))  # partial results survive a later failure


if __name__ == "__main__":
    main(*sys.argv[1:3])
