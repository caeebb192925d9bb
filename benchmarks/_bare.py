"""A bare Optuna loop: digits_cnn's search space, suggested by hand, training with
``practices.train.fit``; the reference for the driver's per-trial overhead."""

from __future__ import annotations

import time
import warnings
from typing import Any

import optuna
import torch

from practices import schedules
from practices.data import load_digits, split_indices, train_val
from practices.models import CNN
from practices.train import Callback, EpochStats, fit


class _Report(Callback):
    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def on_epoch_end(self, stats: EpochStats) -> bool:
        self.trial.report(stats.val_accuracy, stats.epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned()
        return False


def _suggest_schedule(trial: optuna.Trial, max_epochs: int) -> tuple[Any, dict[str, Any]]:
    """The schedule option and its own keys, named as sweeps names a searched group's parameters."""
    name = trial.suggest_categorical("schedule", ["constant", "step", "exponential", "plateau", "cosine"])
    if name == "step":
        return schedules.step, {"step_epochs": trial.suggest_int("schedule[step].step_epochs", 3, 12),
                                "factor": trial.suggest_float("schedule[step].factor", 0.1, 0.9)}
    if name == "exponential":
        return schedules.exponential, {"k": trial.suggest_float("schedule[exponential].k", 0.01, 0.3, log=True)}
    if name == "plateau":
        return schedules.plateau, {"factor": trial.suggest_float("schedule[plateau].factor", 0.1, 0.7),
                                   "patience": trial.suggest_int("schedule[plateau].patience", 1, 5)}
    if name == "cosine":
        return schedules.cosine, {"n_epochs": max_epochs,
                                  "warmup_epochs": trial.suggest_int("schedule[cosine].warmup_epochs", 0, 5)}
    return schedules.constant, {}


def bare_loop(storage: str, n_trials: int, max_epochs: int, seed: int) -> dict[str, float]:
    """Runs ``n_trials`` trials on a fresh study in ``storage``, sampler and pruner as sweeps' defaults
    minus pruning (TPE multivariate, grouped, 8 startup trials; no pruner).

    Returns:
        ``wall_s`` (data loading, study creation and the loop), ``loop_s``, ``train_s`` (model build and
        ``fit``, as timed for a sweeps trial) and ``n_trials``.
    """
    started = time.perf_counter()
    X, y = load_digits()
    data = train_val(X, y, split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                             n_startup_trials=8)
    study = optuna.create_study(storage=storage, sampler=sampler, pruner=optuna.pruners.NopPruner(),
                                direction="maximize")
    train_s = 0.0

    def objective(trial: optuna.Trial) -> float:
        nonlocal train_s
        kernel = trial.suggest_categorical("model.kernel_size", [3, 5])
        hidden = trial.suggest_categorical("model.hidden", [0, 32, 64, 128])
        dropout = trial.suggest_float("model.dropout", 0.0, 0.5)
        lr = trial.suggest_float("optimizer.lr", 0.003, 0.5, log=True)
        momentum = trial.suggest_float("optimizer.momentum", 0.5, 0.99)
        decay = trial.suggest_float("optimizer.weight_decay", 1e-6, 1e-2, log=True)
        batch_size = trial.suggest_categorical("trainer.batch_size", [16, 32, 64])
        make_schedule, schedule_keys = _suggest_schedule(trial, max_epochs)
        t0 = time.perf_counter()
        try:
            torch.manual_seed(trial.number)
            model = CNN(data.in_shape, data.n_classes, kernel_size=kernel, hidden=hidden, dropout=dropout)
            optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=decay)
            scheduler = make_schedule(optimizer, **schedule_keys)
            result = fit(model, optimizer, scheduler, data, max_epochs=max_epochs, batch_size=batch_size,
                         seed=trial.number, callbacks=[_Report(trial)])
        finally:
            train_s += time.perf_counter() - t0
        return result.best_value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loop_started = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, catch=(Exception,))
    now = time.perf_counter()
    return {"wall_s": now - started, "loop_s": now - loop_started, "train_s": train_s, "n_trials": n_trials}
