"""Trial accounting: which trials count toward ``sweep.n_trials``, which may run, and why each ended.

Slots. ``sweep.n_trials`` is a number of slots, and a trial runs only if it holds one. Optuna numbers
a study's trials densely and uniquely in creation order, in every storage (RDB storages lock the
study row while numbering; a journal's log is ordered), so a trial that was just created (``ask``)
can decide from the trials numbered before it, the same way in every process, with no lock:

- a *retry* (user attr ``retry_of``: a stale or interrupted trial queued again) inherits the slot of
  the trial it retries: it holds one if that trial held one;
- any other trial holds a slot if fewer than ``n_trials`` trials numbered before it *take* one. A
  trial takes a slot unless it is a retry, is marked ``surplus``, or was retried by a trial that is.

A trial that holds no slot ends at once as ``surplus`` (failed, never counted, never shown in
progress). Counting a trial that is still deciding as taking a slot is safe: if it turns out surplus,
``n_trials`` trials before it hold slots, so every later trial is surplus too. Hence at most
``n_trials`` chains of retries ever hold slots, across any number of workers and commands; and a
trial numbered below ``n_trials`` always holds one, which is decided without reading the study.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "FINISHED", "INTERRUPTED", "SURPLUS", "RunningTally", "Tally", "count_trials", "end_reason", "holds_slot",
    "retried_numbers", "tally",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
SURPLUS = "surplus"  # created after all slots were taken (a race between workers): never ran, never counts
INTERRUPTED = "interrupted"  # stopped by SIGINT/SIGTERM: queued again with its parameters and seed


def retried_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of trials that were queued again as another trial (stale or interrupted)."""
    return {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}


def is_surplus(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get("end_reason") == SURPLUS


def end_reason(trial: FrozenTrial) -> str | None:
    """Why a finished trial ended: completed, pruned, duplicate, surplus, interrupted, failed: <why>,
    or failed: stale (its worker died: nothing recorded an end, the heartbeat reaper failed it)."""
    if not trial.state.is_finished():
        return None
    if "end_reason" in trial.user_attrs:
        return trial.user_attrs["end_reason"]
    if trial.state == TrialState.FAIL:
        return "failed: stale" if "fail_reason" not in trial.user_attrs else "failed: exception"
    return trial.state.name.lower()


@dataclasses.dataclass(frozen=True)
class Tally:
    """A study's trials as ``sweep.n_trials`` sees them.

    Attributes:
        finished: finished trials that count (not retried, not surplus).
        running: running trials (of any worker).
        failed: counted finished trials that failed.
    """

    finished: int
    running: int
    failed: int


def tally(trials: Sequence[FrozenTrial]) -> Tally:
    """Counts ``trials`` (all of one study) in one pass."""
    retried = retried_numbers(trials)
    finished = failed = running = 0
    for t in trials:
        if t.state == TrialState.RUNNING:
            running += 1
        elif t.state in FINISHED and t.number not in retried and not is_surplus(t):
            finished += 1
            failed += t.state == TrialState.FAIL
    return Tally(finished, running, failed)


class RunningTally:
    """:func:`tally` of one study, kept up to date call after call from the trials that are new or
    were unfinished at the last call: per call O(new + unfinished trials), not O(study).

    A finished trial never changes (Optuna refuses to update it), and a trial's ``retry_of`` is set
    when the retry is created, so what was counted stays counted until a later retry of it appears.
    Relies on Optuna's dense numbering: ``trials[i].number == i`` in every storage's list; where that
    does not hold it counts everything again, as :func:`tally` does.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.newly_finished: list[FrozenTrial] = []  # finished since the last call (all of them after a reset)
        self._n_seen = 0
        self._open: set[int] = set()  # numbers not finished when last seen
        self._counted: dict[int, bool] = {}  # finished, counted trials: number -> failed
        self._retried: set[int] = set()
        self._n_failed = 0

    def __call__(self, trials: Sequence[FrozenTrial]) -> Tally:
        """The tally of ``trials``: every trial of the study, as ``study.get_trials(deepcopy=False)`` lists them."""
        n = len(trials)
        if n < self._n_seen or (n and trials[-1].number != n - 1) or (self._n_seen and trials[self._n_seen - 1].number
                                                                      != self._n_seen - 1):
            self._reset()  # not the same study, or not densely numbered: start over
        for trial in trials[self._n_seen:]:
            self._open.add(trial.number)
            if "retry_of" in trial.user_attrs:
                self._retry(trial.user_attrs["retry_of"])
        self._n_seen = n
        running = 0
        self.newly_finished = []
        for number in sorted(self._open):
            trial = trials[number]
            if trial.state == TrialState.RUNNING:
                running += 1
            elif trial.state in FINISHED:
                self._open.discard(number)
                self.newly_finished.append(trial)
                if number not in self._retried and not is_surplus(trial):
                    self._counted[number] = trial.state == TrialState.FAIL
                    self._n_failed += trial.state == TrialState.FAIL
        return Tally(len(self._counted), running, self._n_failed)

    def _retry(self, number: int) -> None:
        self._retried.add(number)
        if number in self._counted:
            self._n_failed -= self._counted.pop(number)


def count_trials(study: optuna.Study) -> tuple[int, int]:
    """``(finished, running)`` toward ``sweep.n_trials``: a retried trial does not count (its retry
    takes its place), nor does a surplus one."""
    counts = tally(study.get_trials(deepcopy=False))
    return counts.finished, counts.running


def _takes_slot(trial: FrozenTrial, retry_of: Mapping[int, FrozenTrial]) -> bool:
    if "retry_of" in trial.user_attrs:
        return False
    last = trial
    while last.number in retry_of:  # the end of its chain of retries
        last = retry_of[last.number]
    return not is_surplus(last)


def holds_slot(trials: Sequence[FrozenTrial], number: int, n_trials: int) -> bool:
    """Whether trial ``number`` holds one of ``n_trials`` slots (module docstring).

    Args:
        trials: the study's trials, at least those numbered up to ``number`` (later ones are used to
            follow chains of retries).
        number: the trial that decides.
        n_trials: the study's ``sweep.n_trials``.
    """
    by_number = {t.number: t for t in trials}
    retry_of = {t.user_attrs["retry_of"]: t for t in trials if "retry_of" in t.user_attrs}
    trial = by_number[number]
    while True:
        if is_surplus(trial):
            return False
        if "retry_of" not in trial.user_attrs:
            break
        trial = by_number[trial.user_attrs["retry_of"]]  # a retry holds the slot of the trial it retries
    if trial.number < n_trials:
        return True
    taken = sum(_takes_slot(t, retry_of) for n, t in by_number.items() if n < trial.number)
    return taken < n_trials
