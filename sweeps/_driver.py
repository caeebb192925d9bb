"""The sweep: open the study, run the remaining trials, report progress, export at the end."""

from __future__ import annotations

import logging
import sys
import time

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from sweeps._experiment import Dataset, Experiment
from sweeps._export import export_study
from sweeps._objective import Objective
from sweeps._preflight import EXIT_UNFIXABLE, StopOnUnfixable
from sweeps._storage import dashboard_command, mask, open_storage
from sweeps._study import FINISHED, open_study

__all__ = ["run", "EXIT_OK", "EXIT_FAILURES", "EXIT_UNFIXABLE"]

EXIT_OK, EXIT_FAILURES = 0, 1
MIN_TRIALS_FOR_FAILURE_RATE = 5
log = logging.getLogger("sweeps")


def _say(message: str) -> None:
    print(message, file=sys.stdout, flush=True)


class _Progress:
    """One line per finished trial: its state, value, the best so far, and the count."""

    def __init__(self, n_trials: int, metric: str) -> None:
        self.n_trials, self.metric = n_trials, metric

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        n_done = len(study.get_trials(deepcopy=False, states=FINISHED))
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        if trial.state == TrialState.COMPLETE:
            what = f"{self.metric}={trial.value:.4f} at epoch {trial.user_attrs.get('best_epoch')}"
        elif trial.state == TrialState.PRUNED:
            what = f"pruned at epoch {trial.last_step}"
        else:
            reason = trial.user_attrs.get("fail_reason", "see the log")
            epoch = trial.user_attrs.get("fail_epoch")
            what = f"failed: {reason}" + (f" at epoch {epoch}" if epoch else "")
        best = _best(study)
        best_text = f"best {best.value:.4f} (trial {best.number})" if best else "no completed trial yet"
        width = len(str(self.n_trials))
        _say(f"[{n_done:>{width}}/{self.n_trials}] trial {trial.number:<3} {what:<44} {best_text}  {seconds:.1f}s")


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


def run(exp: Experiment, dataset: Dataset) -> int:
    """Runs the experiment's study up to ``sweep.n_trials`` finished trials and exports it.

    Returns:
        The process exit code: 0, 1 when the failure rate stopped the sweep, 3 when a preflight
        failure that no searched key can fix did.
    """
    sweep = exp.cfg.sweep
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(exp, open_storage(sweep.storage))
    n_finished = len(study.get_trials(deepcopy=False, states=FINISHED))
    remaining = sweep.n_trials - n_finished
    _say(f"study {study.study_name!r} in {mask(sweep.storage)}: {n_finished} of {sweep.n_trials} trials finished")
    _say(f"watch it: {dashboard_command(sweep.storage)}")
    failure_rate, unfixable = _FailureRate(sweep.max_failure_rate), StopOnUnfixable()
    if remaining > 0:
        started = time.perf_counter()
        study.optimize(
            Objective(exp, dataset.train_val()),
            n_trials=remaining,
            timeout=sweep.timeout,
            catch=(Exception,),
            callbacks=[
                MaxTrialsCallback(sweep.n_trials, states=FINISHED),
                _Progress(sweep.n_trials, sweep.metric),
                failure_rate,
                unfixable,
            ],
            gc_after_trial=False,  # a full collection costs ~0.3 s with torch loaded; refcounting frees trials
        )
        _say(f"ran {len(study.get_trials(deepcopy=False, states=FINISHED)) - n_finished} trials "
             f"in {time.perf_counter() - started:.1f}s")
    _summary(study, sweep.metric)
    exported = export_study(study, sweep.storage, sweep.export_dir)
    _say(f"exported: {exported.trials_csv}" + (f", {exported.best_yaml}" if exported.best_yaml else ""))
    if exported.best_yaml:
        _say(f"train the best config once: python -m sweeps.train {exported.best_yaml}")
    _say(f"inspect: {dashboard_command(sweep.storage)}")
    if unfixable.tripped:
        return EXIT_UNFIXABLE
    return EXIT_FAILURES if failure_rate.tripped else EXIT_OK


def _summary(study: optuna.Study, metric: str) -> None:
    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in FINISHED}
    best = _best(study)
    line = ", ".join(f"{n} {name}" for name, n in counts.items())
    if best is None:
        _say(f"{line}; no trial completed")
        return
    _say(f"{line}; best trial {best.number}: {metric}={best.value:.4f} with {best.params}")
