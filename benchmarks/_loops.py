"""Trainer throughput: the same model, data and batches through several training loops.

Variants, interleaved within each repeat (the order rotates from repeat to repeat):

- ``hand-written loop``: the minimal PyTorch loop a user writes (shuffle, forward, backward, step,
  validate once per epoch);
- ``practices.train.fit``: the practices training loop, called directly;
- ``sweeps trial``: a whole trial through the driver's ``Objective`` (config copy, user attributes,
  report and prune callback; the monitor where this checkout has one, once with ``monitor=off`` and
  once with ``monitor=default``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import optuna
import torch
from torch.nn import functional as F

from benchmarks._tables import cnn_epochs
from practices.data import TrainVal
from practices.models import CNN
from practices.schedules import constant
from practices.train import evaluate, fit

ROOT = Path(__file__).resolve().parent.parent
# One configuration of digits_cnn's search space, used by every variant.
PARAMS = {"model.kernel_size": 3, "model.hidden": 64, "model.dropout": 0.0, "optimizer.lr": 0.05,
          "optimizer.momentum": 0.9, "optimizer.weight_decay": 1e-6, "trainer.batch_size": 32,
          "schedule": "constant"}


def _model(data: TrainVal, seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = CNN(data.in_shape, data.n_classes, kernel_size=3, hidden=64, dropout=0.0)
    return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-6)


def hand_loop(data: TrainVal, epochs: int, batch_size: int, seed: int) -> float:
    """The minimal loop; returns its last validation accuracy (so that nothing is optimised away)."""
    model, optimizer = _model(data, seed)
    generator = torch.Generator().manual_seed(seed)
    accuracy = 0.0
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(data.X_train), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            loss = F.cross_entropy(model(data.X_train[index]), data.y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        _, accuracy = evaluate(model, data.X_val, data.y_val)
    return accuracy


def practices_fit(data: TrainVal, epochs: int, batch_size: int, seed: int) -> float:
    model, optimizer = _model(data, seed)
    result = fit(model, optimizer, constant(optimizer), data, max_epochs=epochs, batch_size=batch_size, seed=seed)
    return result.best_value


def _monitor_options() -> list[str | None]:
    """``[None]`` where this checkout has no monitor config group; else its off and default options."""
    folder = ROOT / "conf" / "monitor"
    if not folder.is_dir():
        return [None]
    return [name for name in ("off", "default") if (folder / f"{name}.yaml").exists()] or [None]


def sweeps_trial(monitor: str | None, epochs: int, folder: str) -> Callable[[TrainVal, int, int, int], float]:
    """A function that runs one enqueued trial of digits_cnn through the driver's Objective."""
    from sweeps.experiment._experiment import prepare
    from sweeps.trial._objective import Objective

    overrides = ["+experiment=digits_cnn", *cnn_epochs(epochs), "trainer.num_threads=1",
                 "sweep.pruner=none", f"sweep.storage=sqlite:///{folder}/unused.db"]
    if monitor is not None:
        overrides.append(f"monitor={monitor}")
    exp, dataset = prepare(overrides)
    objective = Objective(exp, dataset.train_val())

    cache: dict[str, Any] = {}

    def run(data: TrainVal, epochs: int, batch_size: int, seed: int) -> float:
        # A fresh study each time (the same parameters twice would be skipped as a duplicate), with the
        # preflight results of the earlier runs: in a sweep the checks run once per architecture.
        study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
        for key, value in cache.items():
            study.set_user_attr(key, value)
        study.enqueue_trial(PARAMS)
        study.optimize(objective, n_trials=1)
        cache.update({k: v for k, v in study.user_attrs.items() if k.startswith("preflight.cache.")})
        return study.best_value

    # Waits for the trial's plots (not timed). The renderer process stays, as it does for a sweep's whole
    # run: ending it after every trial (as this harness did before 2026-12-08) timed a process start
    # (~4 ms) into every trial that a sweep pays once.
    run.drain = objective.renderer.drain  # type: ignore[attr-defined]
    run.close = objective.close  # type: ignore[attr-defined]
    return run


def _variants(job: dict[str, Any]) -> dict[str, Callable[[TrainVal, int, int, int], float]]:
    variants = {"hand-written loop": hand_loop, "practices.train.fit": practices_fit}
    for monitor in _monitor_options():
        label = "sweeps trial" + (f" (monitor={monitor})" if monitor else "")
        variants[label] = sweeps_trial(monitor, job["epochs"], job["folder"])
    return variants


def measure_throughput(job: dict[str, Any]) -> dict[str, Any]:
    """Samples per second of each variant, ``job["repeats"]`` times, interleaved.

    Returns:
        ``samples_per_s``: variant -> one figure per repeat; ``monitor``: whether a monitor group existed.
    """
    from sweeps.experiment._experiment import prepare

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    exp, dataset = prepare(["+experiment=digits_cnn", f"sweep.storage=sqlite:///{job['folder']}/unused.db"])
    data = dataset.train_val()  # the very split a sweeps trial trains on
    epochs, batch_size = job["epochs"], PARAMS["trainer.batch_size"]
    variants = _variants(job)
    names = list(variants)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # untimed: first-use costs, and the preflight cache a sweep's later trials find
        variants[name](data, epochs, batch_size, 0)
        getattr(variants[name], "drain", lambda: None)()
    for repeat in range(job["repeats"]):
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:
            started = time.perf_counter()
            variants[name](data, epochs, batch_size, repeat)
            rates[name].append(len(data.X_train) * epochs / (time.perf_counter() - started))
            # A sweep draws a trial's plots in its renderer process while the next trial trains; here
            # they are drawn before the next variant starts, so that they slow none of them.
            getattr(variants[name], "drain", lambda: None)()
    for variant in variants.values():
        getattr(variant, "close", lambda: None)()
    return {"samples_per_s": rates, "monitor": _monitor_options() != [None]}
