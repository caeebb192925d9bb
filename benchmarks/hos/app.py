"""digits_cnn trained through hydra-optuna-sweeper 1.2 (Hydra multirun, its TPE sampler).

Runs in the harness's own virtual environment (optuna<3, SQLAlchemy<2), importing this project's
``practices`` package through PYTHONPATH: the same data, split, model, optimizer, schedules and
training loop as a sweeps trial. The sweeper cannot prune, so every trial trains ``bench.max_epochs``
epochs; each appends its per-epoch validation accuracy and the epochs it trained to ``bench.out``.

    python benchmarks/hos/app.py -m hydra.sweeper.n_trials=12 bench.seed=0 bench.out=/tmp/t.jsonl
"""

from __future__ import annotations

import json

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from practices import schedules
from practices.data import load_digits, split_indices, train_val
from practices.models import CNN
from practices.train import Callback, EpochStats, NonFiniteLossError, fit

_DATA = {}


class _History(Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_epoch_end(self, stats: EpochStats) -> bool:
        self.values.append(stats.val_accuracy)
        return False


def _data():
    """The training and validation splits of the sweeps defaults (split seed 0, 0.2 / 0.2)."""
    if "tv" not in _DATA:
        X, y = load_digits()
        _DATA["tv"] = train_val(X, y, split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0))
    return _DATA["tv"]


def _schedule(cfg: DictConfig, optimizer: torch.optim.Optimizer):
    s, name = cfg.schedule, cfg.schedule.name
    if name == "step":
        return schedules.step(optimizer, s.step_epochs, s.step_factor)
    if name == "exponential":
        return schedules.exponential(optimizer, s.exponential_k)
    if name == "plateau":
        return schedules.plateau(optimizer, s.plateau_factor, s.plateau_patience, mode="max")
    if name == "cosine":
        return schedules.cosine(optimizer, cfg.bench.max_epochs, s.cosine_warmup)
    return schedules.constant(optimizer)


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    torch.set_num_threads(cfg.bench.num_threads)
    job = HydraConfig.get().job.num
    seed = int(np.random.SeedSequence([cfg.bench.seed, job]).generate_state(1)[0] % 2**31)
    data = _data()
    torch.manual_seed(seed)
    model = CNN(data.in_shape, data.n_classes, kernel_size=cfg.model.kernel_size, hidden=cfg.model.hidden,
                dropout=cfg.model.dropout)
    opt = cfg.optimizer
    optimizer = torch.optim.SGD(model.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
    history = _History()
    failed, epochs = False, cfg.bench.max_epochs
    try:
        result = fit(model, optimizer, _schedule(cfg, optimizer), data, max_epochs=cfg.bench.max_epochs,
                     batch_size=cfg.trainer.batch_size, seed=seed, callbacks=[history])
        value = result.best_value
        epochs = result.epochs_run
    except (NonFiniteLossError, ValueError) as exc:
        # The sweeper ends the whole multirun on an exception; a diverged trial (or a schedule its
        # sampled keys cannot build) scores its best so far, as a failed sweeps trial costs its epochs.
        failed, value = True, max(history.values, default=0.0)
        epochs = exc.epoch if isinstance(exc, NonFiniteLossError) else len(history.values)
    with open(cfg.bench.out, "a") as out:
        out.write(json.dumps({"job": job, "values": history.values, "epochs": epochs, "failed": failed}) + "\n")
    return value


if __name__ == "__main__":
    main()
