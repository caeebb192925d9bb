"""The sweep: open the study, run the remaining trials, report progress, open the test vault,
export at the end."""

from __future__ import annotations

import sys
import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps._experiment import Dataset, Experiment
from sweeps._export import export_study
from sweeps._objective import Objective
from sweeps._preflight import EXIT_UNFIXABLE, StopOnUnfixable
from sweeps._storage import artifact_dir, dashboard_command, mask, open_storage
from sweeps._study import FINISHED, count_trials, end_reason, open_study
from sweeps._vault import check_seal, open_when_due, refuse_tuning_after_opening

__all__ = ["run", "run_trials", "storage_for", "EXIT_OK", "EXIT_FAILURES", "EXIT_RECYCLE", "EXIT_UNFIXABLE"]

EXIT_OK, EXIT_FAILURES = 0, 1
EXIT_RECYCLE = 75  # a worker that ran its trials_per_worker and wants to be replaced
MIN_TRIALS_FOR_FAILURE_RATE = 5
_WAIT_SECONDS = 1.0


def _say(message: str) -> None:
    print(message, file=sys.stdout, flush=True)


class _Progress:
    """One line per finished trial: its state, value, the best so far, and the count."""

    def __init__(self, n_trials: int, metric: str, prefix: str = "") -> None:
        self.n_trials, self.metric, self.prefix = n_trials, metric, prefix

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        n_done, _ = count_trials(study)
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        if trial.state == TrialState.COMPLETE:
            what = f"{self.metric}={trial.value:.4f} at epoch {trial.user_attrs.get('best_epoch')}"
        elif trial.state == TrialState.PRUNED:
            what = trial.user_attrs.get("prune_reason", f"pruned at epoch {trial.last_step}")
        else:
            reason = trial.user_attrs.get("fail_reason", "see the log")
            epoch = trial.user_attrs.get("fail_epoch")
            what = f"failed: {reason}" + (f" at epoch {epoch}" if epoch else "")
        best = _best(study)
        best_text = f"best {best.value:.4f} (trial {best.number})" if best else "no completed trial yet"
        width = len(str(self.n_trials))
        _say(f"{self.prefix}[{n_done:>{width}}/{self.n_trials}] trial {trial.number:<3} {what:<44} {best_text}  "
             f"{seconds:.1f}s")


class _FailureRate:
    """Stops the sweep once more than ``max_rate`` of the finished trials failed."""

    def __init__(self, max_rate: float) -> None:
        self.max_rate, self.tripped = max_rate, False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        finished = study.get_trials(deepcopy=False, states=FINISHED)
        failed = sum(t.state == TrialState.FAIL for t in finished)
        if len(finished) >= MIN_TRIALS_FOR_FAILURE_RATE and failed / len(finished) > self.max_rate:
            self.tripped = True
            _say(f"stopping: {failed} of {len(finished)} trials failed, more than "
                 f"sweep.max_failure_rate={self.max_rate}")
            study.stop()


def _best(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def storage_for(exp: Experiment) -> optuna.storages.BaseStorage:
    sweep = exp.cfg.sweep
    return open_storage(sweep.storage, sweep.heartbeat_interval, sweep.grace_period, sweep.stale_retries)


def run_trials(exp: Experiment, dataset: Dataset, study: optuna.Study, max_trials: int | None = None,
               prefix: str = "") -> int:
    """Runs trials one at a time until the study holds ``sweep.n_trials`` finished trials.

    Trials that other workers are running count as well; while they run, this worker waits rather
    than overshoot the total, and reaps them if their worker died (heartbeat), so that their retry
    runs here. Used in-process for one worker and in each worker process for several.

    Returns:
        EXIT_OK, EXIT_FAILURES (failure rate exceeded), EXIT_UNFIXABLE (a preflight failure no
        searched key can fix) or EXIT_RECYCLE (ran ``max_trials``).
    """
    sweep = exp.cfg.sweep
    objective = Objective(exp, dataset.train_val())
    failure_rate, unfixable = _FailureRate(sweep.max_failure_rate), StopOnUnfixable()
    callbacks = [_Progress(sweep.n_trials, sweep.metric, prefix), failure_rate, unfixable]
    deadline = None if sweep.timeout is None else time.monotonic() + sweep.timeout
    n_ran = 0
    while not (failure_rate.tripped or unfixable.tripped):
        if deadline is not None and time.monotonic() > deadline:
            _say(f"{prefix}stopping: sweep.timeout={sweep.timeout}s reached")
            break
        if max_trials is not None and n_ran >= max_trials:
            return EXIT_RECYCLE
        finished, running = count_trials(study)
        if finished >= sweep.n_trials:
            break
        if finished + running >= sweep.n_trials:
            optuna.storages.fail_stale_trials(study)
            time.sleep(_WAIT_SECONDS)
            continue
        study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=callbacks)
        n_ran += 1
    if unfixable.tripped:
        return EXIT_UNFIXABLE
    return EXIT_FAILURES if failure_rate.tripped else EXIT_OK


def run(exp: Experiment, dataset: Dataset) -> int:
    """Runs the experiment's study up to ``sweep.n_trials`` finished trials and exports it.

    Returns:
        The process exit code: 0, 1 when the failure rate stopped the sweep, 3 when a preflight
        failure that no searched key can fix did.
    """
    sweep = exp.cfg.sweep
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(exp, storage_for(exp))
    vault = check_seal(study, dataset, _say)
    n_finished, _ = count_trials(study)
    refuse_tuning_after_opening(vault, exp.cfg.vault.reopen, n_finished, sweep.n_trials, _say)
    _say(f"study {study.study_name!r} in {mask(sweep.storage)}: {n_finished} of {sweep.n_trials} trials finished")
    artifacts = str(artifact_dir(sweep.storage, sweep.artifact_dir))
    _say(f"watch it: {dashboard_command(sweep.storage, artifacts)}")
    code = EXIT_OK
    if n_finished < sweep.n_trials:
        started = time.perf_counter()
        if sweep.n_workers == 1 and sweep.trials_per_worker is None:
            code = run_trials(exp, dataset, study)
        else:
            from sweeps._workers import run_workers

            code = run_workers(exp, study)
        _say(f"ran {count_trials(study)[0] - n_finished} trials in {time.perf_counter() - started:.1f}s")
    _summary(study, sweep.metric)
    if code == EXIT_OK:
        open_when_due(study, exp, dataset, sweep.storage, _say)
    exported = export_study(study, sweep.storage, sweep.export_dir)
    _say(f"exported: {exported.trials_csv}" + (f", {exported.best_yaml}" if exported.best_yaml else "")
         + (f", {exported.test_result}" if exported.test_result else ""))
    if exported.best_yaml:
        _say(f"train the best config once: python -m sweeps.train {exported.best_yaml}")
    _say(f"inspect: {dashboard_command(sweep.storage, artifacts)}")
    return code


def _summary(study: optuna.Study, metric: str) -> None:
    reasons: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False, states=FINISHED):
        reason = end_reason(t)
        reasons[reason] = reasons.get(reason, 0) + 1
    line = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    best = _best(study)
    if best is None:
        _say(f"{line}; no trial completed")
        return
    _say(f"{line}; best trial {best.number}: {metric}={best.value:.4f} with {best.params}")
