"""Trial accounting: which trials count toward ``sweep.n_trials`` and why each one ended."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["FINISHED", "count_trials", "end_reason", "retried_numbers"]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def retried_numbers(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of trials that went stale and were re-queued as another trial."""
    return {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}


def end_reason(trial: FrozenTrial) -> str | None:
    """Why a finished trial ended: completed, pruned, duplicate, failed: <why>, or failed: stale
    (its worker died: nothing recorded an end, the heartbeat reaper failed it)."""
    if not trial.state.is_finished():
        return None
    if "end_reason" in trial.user_attrs:
        return trial.user_attrs["end_reason"]
    if trial.state == TrialState.FAIL:
        return "failed: stale" if "fail_reason" not in trial.user_attrs else "failed: exception"
    return trial.state.name.lower()


def count_trials(study: optuna.Study) -> tuple[int, int]:
    """``(finished, running)`` toward ``sweep.n_trials``. A stale trial that was retried does not
    count: its retry takes its place."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    finished = sum(t.state in FINISHED and t.number not in retried for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return finished, running
