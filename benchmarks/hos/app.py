"""An experiment's search space trained through hydra-optuna-sweeper 1.2 (Hydra multirun, its TPE sampler).

Runs in the harness's own virtual environment (optuna<3, SQLAlchemy<2), importing this project's
``practices`` and ``benchmarks.recipes`` through PYTHONPATH: the training and validation samples the
harness saved (``bench.data``, the same split a sweeps trial gets; the test split is not in it), and
the recipe's model, optimizer, schedules, weight averaging and ``practices.train.fit``. The sweeper
cannot prune, so every trial trains ``bench.max_epochs`` epochs; each appends its parameters, seed,
per-epoch validation accuracy, best epoch and the epochs it trained to ``bench.out``. One config per
experiment in ``conf/`` (``--config-name``):

    python benchmarks/hos/app.py --config-name mnist1d_cnn -m hydra.sweeper.n_trials=15 bench.seed=0 \
        bench.data=/tmp/trainval.npz bench.out=/tmp/t.jsonl
"""

from __future__ import annotations

import json
from typing import Any

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from benchmarks import recipes
from practices.data import TrainVal
from practices.train import NonFiniteLossError

_DATA: dict[str, TrainVal] = {}
# The flat schedule keys of conf/*.yaml -> the option they belong to and the recipe's key.
_SCHEDULE_KEYS = {"step_epochs": ("step", "step_epochs"), "step_factor": ("step", "factor"),
                  "exponential_k": ("exponential", "k"), "plateau_factor": ("plateau", "factor"),
                  "plateau_patience": ("plateau", "patience"), "cosine_warmup": ("cosine", "warmup_epochs")}


def _data(path: str) -> TrainVal:
    """The training and validation samples, loaded once per multirun."""
    if path not in _DATA:
        with np.load(path) as f:
            t = {k: torch.from_numpy(f[k]) for k in ("X_train", "y_train", "X_val", "y_val")}
            _DATA[path] = TrainVal(t["X_train"], t["y_train"], t["X_val"], t["y_val"], int(f["n_classes"]))
    return _DATA[path]


def params_of(cfg: DictConfig) -> dict[str, Any]:
    """The trial's values under the names sweeps gives them; only the drawn schedule's own keys."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    params = {f"{group}.{key}": value for group in ("model", "optimizer", "trainer") for key, value in
              plain.get(group, {}).items()}
    option = plain["schedule"]["name"]
    params["schedule"] = option
    for key, value in plain["schedule"].items():
        if key in _SCHEDULE_KEYS and _SCHEDULE_KEYS[key][0] == option:
            params[f"schedule[{option}].{_SCHEDULE_KEYS[key][1]}"] = value
    return params


@hydra.main(version_base=None, config_path="conf", config_name="mnist1d_cnn")
def main(cfg: DictConfig) -> float:
    torch.set_num_threads(cfg.bench.num_threads)
    job = HydraConfig.get().job.num
    seed = recipes.trial_seed(cfg.bench.seed, job)
    params = params_of(cfg)
    history = recipes.History()
    failed, epochs, best_epoch = False, cfg.bench.max_epochs, None
    try:
        result, _ = recipes.train(cfg.bench.experiment, params, _data(cfg.bench.data), seed, cfg.bench.max_epochs,
                                  callbacks=[history])
        value, epochs, best_epoch = result.best_value, result.epochs_run, result.best_epoch
    except (NonFiniteLossError, ValueError) as exc:
        # The sweeper ends the whole multirun on an exception; a diverged trial (or a schedule its
        # sampled keys cannot build) scores its best so far, as a failed sweeps trial costs its epochs.
        failed, value = True, max(history.values, default=0.0)
        epochs = exc.epoch if isinstance(exc, NonFiniteLossError) else len(history.values)
        if history.values:
            best_epoch = int(np.argmax(history.values)) + 1
    with open(cfg.bench.out, "a") as out:
        out.write(json.dumps({"job": job, "params": params, "seed": seed, "values": history.values, "epochs": epochs,
                              "best_epoch": best_epoch, "value": value, "failed": failed}) + "\n")
    return value


if __name__ == "__main__":
    main()
