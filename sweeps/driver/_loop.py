"""The trial loop: claim a slot, ask, run the objective, tell, report progress; in-process for one
worker and in each worker process for several (``_workers.py``)."""

from __future__ import annotations

import time
import warnings
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from sweeps._exit import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_RECYCLE,
    EXIT_UNFIXABLE,
)
from sweeps._interrupt import deferred, handling_signals
from sweeps._say import say
from sweeps.experiment._build import trial_seed
from sweeps.experiment._data import PreparedData
from sweeps.experiment._experiment import Experiment
from sweeps.storage._url import open_storage
from sweeps.study._result import result_value
from sweeps.study._trials import INTERRUPTED, SURPLUS, RunningTally, Tally, end_reason, holds_slot
from sweeps.trial._heartbeat import Heartbeat
from sweeps.trial._objective import Objective
from sweeps.trial._preflight import StopOnUnfixable
from sweeps.trial._render import Renderer

__all__ = ["MIN_TRIALS_FOR_FAILURE_RATE", "best_trial", "run_trials", "storage_for"]

MIN_TRIALS_FOR_FAILURE_RATE = 5
_WAIT_SECONDS = 1.0


class _Best:
    """The best completed trial so far, kept from the trials that finished since the last look: O(1) a
    trial, no storage read (the lowest number wins a tie, as ``study.best_trial``)."""

    def __init__(self, direction: optuna.study.StudyDirection) -> None:
        self.sign = 1.0 if direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
        self.trial: FrozenTrial | None = None

    def update(self, finished: list[FrozenTrial]) -> None:
        for trial in finished:
            if trial.state != TrialState.COMPLETE or trial.value is None:
                continue
            if self.trial is None or self.sign * trial.value > self.sign * self.trial.value or (
                    trial.value == self.trial.value and trial.number < self.trial.number):
                self.trial = trial


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best completed trial: one indexed query on RDB storages, not a read of every trial."""
    try:
        return study.best_trial
    except ValueError:
        return None


def _trial_text(trial: FrozenTrial, metric: str) -> str:
    if trial.state == TrialState.COMPLETE:
        return f"{metric}={trial.value:.4f} at epoch {result_value(trial, 'best_epoch')}"
    if trial.state == TrialState.PRUNED:
        return trial.user_attrs.get("prune_reason", f"pruned at epoch {trial.last_step}")
    reason = end_reason(trial)
    if reason == "failed: stale":
        # The reaping worker queues the retry (sweep.stale_retries); this worker cannot see whether it did.
        return ("failed: stale (another worker failed it while it ran: heartbeat late); "
                "queued again while sweep.stale_retries allows")
    epoch = trial.user_attrs.get("fail_epoch")
    return f"failed: {trial.user_attrs.get('fail_reason', 'see the log')}" + (f" at epoch {epoch}" if epoch else "")


def _progress(trial: FrozenTrial, counts: Tally, best: FrozenTrial | None, n_trials: int, metric: str,
              prefix: str) -> None:
    """One line per finished trial: its outcome, the best so far, and the count."""
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete else 0.0
    best_text = f"best {best.value:.4f} (trial {best.number})" if best else "no completed trial yet"
    width = len(str(n_trials))
    say(f"{prefix}[{counts.finished:>{width}}/{n_trials}] trial {trial.number:<3} {_trial_text(trial, metric):<44} "
         f"{best_text}  {seconds:.1f}s")


def _failure_rate_exceeded(counts: Tally, max_rate: float, prefix: str) -> bool:
    if counts.finished < MIN_TRIALS_FOR_FAILURE_RATE or counts.failed / counts.finished <= max_rate:
        return False
    say(f"{prefix}stopping: {counts.failed} of {counts.finished} trials failed, more than "
         f"sweep.max_failure_rate={max_rate}")
    return True


def storage_for(exp: Experiment) -> optuna.storages.BaseStorage:
    sweep = exp.cfg.sweep
    return open_storage(sweep.storage, sweep.heartbeat_interval, sweep.grace_period, sweep.stale_retries)


def _ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for Study.optimize; _run_one sends them itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
        return study.ask()


def _claim_slot(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """Whether the new ``trial`` holds one of the study's slots (``_trials.py``); marks it surplus
    and ends it if not."""
    attrs = trial.user_attrs
    if "retry_of" not in attrs and attrs.get("end_reason") != SURPLUS and trial.number < n_trials:
        return True  # fewer than n_trials trials exist before it: no need to read them
    if holds_slot(study.get_trials(deepcopy=False), trial.number, n_trials):
        return True
    trial.set_user_attr("end_reason", SURPLUS)
    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    return False


def _set_attr(trial: optuna.Trial, key: str, value: Any) -> None:
    try:
        trial.set_user_attr(key, value)
    except UpdateFinishedTrialError:
        pass  # another worker already ended the trial (failed it as stale)


def _end_interrupted(study: optuna.Study, storage: optuna.storages.BaseStorage, trial: optuna.Trial, trial_id: int,
                     study_seed: int) -> None:
    """Fails the trial as ``interrupted`` and queues its configuration again with the same seed; the
    retry takes its place toward ``sweep.n_trials``. Nothing to do if another worker ended it."""
    try:
        trial.set_user_attr("end_reason", INTERRUPTED)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except UpdateFinishedTrialError:
        return  # failed as stale meanwhile: the stale-trial callback queued its retry
    frozen = storage.get_trial(trial_id)
    fixed = frozen.system_attrs.get("fixed_params")
    # Recorded after sampling; else the one it would get.
    seed = frozen.user_attrs.get("seed", trial_seed(study_seed, frozen.number))
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=frozen.params, distributions=frozen.distributions,
        user_attrs={"retry_of": frozen.number, "seed": seed,
                    # a linked trial's source
                    **{k: v for k, v in frozen.user_attrs.items() if k.startswith("select.")}},
        system_attrs={"fixed_params": fixed} if fixed else {},
    ))


def _run_one(study: optuna.Study, study_id: int, storage: optuna.storages.BaseStorage, objective: Objective,
             n_trials: int) -> FrozenTrial | None:
    """Asks for a trial, claims its slot, runs the objective and tells the outcome.

    Returns:
        The finished trial, or None if it held no slot (surplus).

    Raises:
        Interrupted: SIGINT/SIGTERM; a trial that held a slot was ended as ``interrupted`` and queued again.
    """
    claimed: tuple[optuna.Trial, int] | None = None
    value: float | None = None
    state = TrialState.COMPLETE
    try:
        with deferred():  # a signal here waits until the trial has its slot (or is surplus) and its first beat
            trial = _ask(study)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            if not _claim_slot(study, trial, n_trials):
                return None
            claimed = trial, trial_id
        with Heartbeat(storage, trial_id):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except Exception as exc:  # a failing trial never stops the sweep; the objective recorded known causes
                state = TrialState.FAIL
                if "end_reason" not in storage.get_trial(trial_id).user_attrs:
                    _set_attr(trial, "end_reason", "failed: exception")
                    _set_attr(trial, "fail_reason", f"{type(exc).__name__}: {exc}"[:300])
    except KeyboardInterrupt:
        if claimed is not None:
            with deferred():
                _end_interrupted(study, storage, *claimed, objective.experiment.cfg.sweep.seed)
        raise
    with deferred(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a NaN value fails the trial; its progress line says so
        # skip_if_finished: another worker may have failed this trial as stale while it ran (its
        # heartbeat was late). Study.optimize raises "AssertionError: Should not reach." in Optuna
        # 5.0.0 then (optuna/study/_optimize.py, _run_trial: its tell raises, and its finally block
        # finds a FAIL state without an error), which ended the worker; here the stale trial's
        # retry runs as another trial and this worker goes on. Reported upstream as optuna/optuna
        # issues #5470 and #5986 (both closed; the code path is unchanged in Optuna 5.0.0 and 5.1.0).
        if state == TrialState.COMPLETE:
            return study.tell(trial, value, skip_if_finished=True)
        return study.tell(trial, state=state, skip_if_finished=True)


def run_trials(exp: Experiment, dataset: PreparedData, study: optuna.Study, max_trials: int | None = None,
               prefix: str = "", storage: optuna.storages.BaseStorage | None = None,
               renderer: Renderer | None = None) -> int:
    """Runs trials one at a time until the study holds ``sweep.n_trials`` finished trials.

    Each trial claims a slot in the storage before it samples (``_trials.py``), so that workers and
    independent commands on one study never exceed the total. Trials that other workers are running
    count as well; while they run, this worker waits rather than start a surplus trial, and reaps
    them if their worker died (heartbeat), so that their retry runs here. Used in-process for one
    worker and in each worker process for several.

    Args:
        storage: the storage object the study was opened with (heartbeats go through it); opened
            anew from the config if None.
        renderer: the sweep's plot renderer, which the caller closes once the sweep's work is done (its
            last plots are drawn meanwhile); None starts one that is waited for when the trials end.

    Returns:
        EXIT_OK, EXIT_FAILURES (failure rate exceeded), EXIT_UNFIXABLE (a preflight failure no
        searched key can fix) or EXIT_RECYCLE (ran ``max_trials``).

    Raises:
        Interrupted: SIGINT or SIGTERM; the running trial was queued again.
    """
    storage = storage if storage is not None else storage_for(exp)
    study_id = storage.get_study_id_from_name(study.study_name)
    objective = Objective(exp, dataset.train_val(), renderer=renderer)
    if not isinstance(storage, optuna.storages.InMemoryStorage):  # another process can open it: notes go there
        objective.note_storage = exp.cfg.sweep.storage
    try:
        return _trial_loop(exp, study, study_id, storage, objective, max_trials, prefix)
    finally:
        close = getattr(objective, "close", None)  # a stand-in objective (tests) may have none
        if close is not None:
            close()  # with its own renderer: every finished trial's plots are drawn before this returns


def _trial_loop(exp: Experiment, study: optuna.Study, study_id: int, storage: optuna.storages.BaseStorage,
                objective: Objective, max_trials: int | None, prefix: str) -> int:
    sweep = exp.cfg.sweep
    unfixable = StopOnUnfixable()
    deadline = None if sweep.timeout is None else time.monotonic() + sweep.timeout
    n_ran = 0
    counter = RunningTally()  # per trial: the new and unfinished trials only, not the whole study
    best = _Best(study.direction)

    def count() -> Tally:  # one read of the trial list per trial, shared by the count, the best and the objective
        trials = study.get_trials(deepcopy=False)
        objective.known_trials = trials  # the next trial's duplicate check reads this list, not the storage
        tallied = counter(trials)
        best.update(counter.newly_finished)
        return tallied

    with handling_signals():
        counts = count()
        while True:
            if deadline is not None and time.monotonic() > deadline:
                say(f"{prefix}stopping: sweep.timeout={sweep.timeout}s reached")
                return EXIT_OK
            if max_trials is not None and n_ran >= max_trials:
                return EXIT_RECYCLE
            if counts.finished >= sweep.n_trials:
                return EXIT_OK
            if counts.finished + counts.running >= sweep.n_trials:
                with deferred(), warnings.catch_warnings():
                    warnings.simplefilter("ignore", ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                time.sleep(_WAIT_SECONDS)
                counts = count()
                continue
            trial = _run_one(study, study_id, storage, objective, sweep.n_trials)
            counts = count()
            if trial is None:  # surplus: another worker took the last slot meanwhile
                continue
            n_ran += 1
            _progress(trial, counts, best.trial, sweep.n_trials, sweep.metric, prefix)
            unfixable(study, trial)
            if unfixable.tripped:
                return EXIT_UNFIXABLE
            if _failure_rate_exceeded(counts, sweep.max_failure_rate, prefix):
                return EXIT_FAILURES
