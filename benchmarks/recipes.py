"""The baselines' training recipes: data, split, model, optimizer, schedules and weight averaging of
each experiment the sample-efficiency benchmark supports, written in plain PyTorch on ``practices``.

The plain Optuna script (``benchmarks/plain_optuna.py``) and the hydra-optuna-sweeper app
(``benchmarks/hos/app.py``, in its own virtual environment) both train through :func:`train`, so the
two baselines differ only in how they search. The values are those of the experiment's config in
``conf/`` (tests/scripts/test_benchmarks.py checks them against the composed config), so a baseline
trial trains what a sweeps trial with the same parameters trains.

Parameters use the names sweeps gives them: ``optimizer.lr``, ``trainer.averaging``, ``schedule``
(the option) and ``schedule[step].step_epochs`` (an option's own keys). No Optuna, Hydra or sweeps
import here: the module runs under the sweeper's old Optuna too.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from practices import schedules
from practices.averaging import WeightAverage, swa_start
from practices.data import Split, TrainVal, load_digits, split_indices, train_val
from practices.models import CNN, CNN1D
from practices.train import Callback, EpochStats, FitResult, evaluate, fit

__all__ = ["RECIPES", "History", "Recipe", "load", "recipe", "save_train_val", "test_accuracy", "train", "trial_seed"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What one experiment fixes; the searched keys come in ``params``."""

    name: str
    val_fraction: float
    test_fraction: float
    max_epochs: int
    batch_size: int | None  # None: searched (``trainer.batch_size``)
    ema_decay: float
    cosine_warmup_high: int  # the search space's upper bound of schedule[cosine].warmup_epochs
    load: Callable[[], tuple[np.ndarray, np.ndarray]]
    make: Callable[[Sequence[int], int, dict[str, Any]], tuple[torch.nn.Module, torch.optim.Optimizer]]


def _mnist1d() -> tuple[np.ndarray, np.ndarray]:
    from practices.mnist1d_data import load_mnist1d

    return load_mnist1d(num_samples=6000, seed=42, final_seq_length=40)  # conf/experiment/mnist1d_cnn.yaml


def _make_mnist1d(in_shape: Sequence[int], n_classes: int, p: dict[str, Any]) -> tuple[Any, Any]:
    model = CNN1D(in_shape, n_classes)  # conf/model/cnn1d.yaml: the paper's ConvBase
    return model, torch.optim.Adam(model.parameters(), lr=p["optimizer.lr"], weight_decay=p["optimizer.weight_decay"])


def _make_digits(in_shape: Sequence[int], n_classes: int, p: dict[str, Any]) -> tuple[Any, Any]:
    model = CNN(in_shape, n_classes, kernel_size=p["model.kernel_size"], hidden=p["model.hidden"],
                dropout=p["model.dropout"])
    optimizer = torch.optim.SGD(model.parameters(), lr=p["optimizer.lr"], momentum=p["optimizer.momentum"],
                                weight_decay=p["optimizer.weight_decay"])
    return model, optimizer


RECIPES = {
    "mnist1d_cnn": Recipe("mnist1d_cnn", 0.16666, 0.16666, 40, 100, 0.99, 3, _mnist1d, _make_mnist1d),
    "digits_cnn": Recipe("digits_cnn", 0.2, 0.2, 25, None, 0.999, 5, load_digits, _make_digits),
}


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"--efficiency-experiment must be one of {sorted(RECIPES)} (the experiments with baseline "
                         f"recipes in benchmarks/recipes.py), got {name!r}")
    return RECIPES[name]


def trial_seed(seed: int, number: int) -> int:
    """A baseline trial's seed, from the run's seed and the trial's number."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0] % 2**31)


@functools.lru_cache(maxsize=2)
def load(name: str) -> tuple[np.ndarray, np.ndarray, Split]:
    """The samples and the split that ``python -m sweeps +experiment=<name>`` cuts (split seed 0);
    generated once per process (MNIST-1D's generator takes seconds)."""
    r = recipe(name)
    X, y = r.load()
    return X, y, split_indices(y, val_fraction=r.val_fraction, test_fraction=r.test_fraction, seed=0)


def _schedule(p: dict[str, Any], optimizer: torch.optim.Optimizer, max_epochs: int) -> Any:
    option = p.get("schedule", "constant")
    keys = {k.split("].", 1)[1]: v for k, v in p.items() if k.startswith(f"schedule[{option}].")}
    if option == "cosine":
        return schedules.cosine(optimizer, n_epochs=max_epochs, **keys)
    return getattr(schedules, option)(optimizer, **keys)


class History(Callback):
    """Each epoch's validation accuracy (of the averaged weights when averaging is on)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_epoch_end(self, stats: EpochStats) -> bool:
        self.values.append(stats.val_accuracy)
        return False


def train(name: str, params: dict[str, Any], data: TrainVal, seed: int, max_epochs: int | None = None,
          stop_after: int | None = None, callbacks: Sequence[Callback] = ()) -> tuple[FitResult, torch.nn.Module]:
    """Trains ``params`` of experiment ``name`` once with ``seed``.

    Args:
        max_epochs: the trial's length (the experiment's when None): the cosine schedule's length
            and the start of SWA's window (its last quarter) follow it.
        stop_after: train only this many epochs of that run (the final model of a shipped trial:
            the run up to its best epoch, the schedule and averaging exactly as in the trial).
    """
    r = recipe(name)
    max_epochs = max_epochs or r.max_epochs
    torch.manual_seed(seed)
    model, optimizer = r.make(data.in_shape, data.n_classes, params)
    averaging = params.get("trainer.averaging", "none")
    average = None
    if averaging != "none":
        average = WeightAverage(model, averaging, ema_decay=r.ema_decay, swa_start_epoch=swa_start(None, max_epochs))
    batch_size = r.batch_size or params["trainer.batch_size"]
    result = fit(model, optimizer, _schedule(params, optimizer, max_epochs), data, max_epochs=stop_after or max_epochs,
                 batch_size=batch_size, seed=seed, callbacks=callbacks, average=average)
    return result, model


def save_train_val(name: str, path: str) -> None:
    """Writes the training and validation samples (not the test split) for another process."""
    X, y, split = load(name)
    np.savez(path, X_train=X[split.train], y_train=y[split.train], X_val=X[split.val], y_val=y[split.val],
             n_classes=int(y.max()) + 1)


def test_accuracy(name: str, params: dict[str, Any], seed: int, best_epoch: int, max_epochs: int | None = None,
                  ) -> dict[str, float]:
    """The shipping rule of the baselines: the chosen trial's config trained again with its seed up
    to its best epoch (the same run as the trial, so the same weights on a CPU), then evaluated once
    on the sealed test split.

    Returns:
        ``test_accuracy``, and ``val_accuracy`` of the retrained model (equal to the trial's best
        when the run repeats exactly).
    """
    X, y, split = load(name)
    data = train_val(X, y, split)
    _, model = train(name, params, data, seed, max_epochs=max_epochs, stop_after=best_epoch)
    X_test, y_test = torch.from_numpy(X[split.test].copy()), torch.from_numpy(y[split.test].copy())
    _, val_accuracy = evaluate(model, data.X_val, data.y_val)
    _, test = evaluate(model, X_test, y_test)
    return {"test_accuracy": test, "val_accuracy": val_accuracy}
