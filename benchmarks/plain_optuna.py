"""A plain Optuna script, the way a user writes one: ``optuna.create_study``, ``TPESampler(seed=...)``
with its defaults, no pruning, the search space suggested by hand (define-by-run, the schedule's keys
only for the schedule drawn), and ``practices.train.fit`` on the experiment's data split, model,
optimizer, schedules and weight averaging (``benchmarks/recipes.py``). No sweeps code in the loop.

    PYTHONPATH=$PWD python -m benchmarks.plain_optuna --experiment mnist1d_cnn --seed 0 --budget-epochs 600

It runs ``budget_epochs // max_epochs`` trials (each trains all its epochs), picks the best trial
(Optuna's ``study.best_trial``) and ships it by the baselines' rule (``recipes.test_accuracy``).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import optuna

from benchmarks import recipes
from practices.data import train_val
from practices.train import NonFiniteLossError


def suggest(trial: optuna.Trial, experiment: str, max_epochs: int) -> dict[str, Any]:
    """The experiment's search space (conf/experiment/<experiment>.yaml), suggested by hand."""
    r = recipes.recipe(experiment)
    warmup_high = min(r.cosine_warmup_high, max_epochs - 1)
    if experiment == "mnist1d_cnn":
        p: dict[str, Any] = {
            "optimizer.lr": trial.suggest_float("optimizer.lr", 1e-3, 3e-2, log=True),
            "optimizer.weight_decay": trial.suggest_float("optimizer.weight_decay", 1e-6, 1e-3, log=True),
            "trainer.averaging": trial.suggest_categorical("trainer.averaging", ["none", "ema", "swa"]),
            "schedule": trial.suggest_categorical("schedule", ["constant", "step", "cosine"]),
        }
        if p["schedule"] == "step":
            p["schedule[step].step_epochs"] = trial.suggest_int("schedule[step].step_epochs", 5, 20)
            p["schedule[step].factor"] = trial.suggest_float("schedule[step].factor", 0.1, 0.7)
        elif p["schedule"] == "cosine":
            p["schedule[cosine].warmup_epochs"] = trial.suggest_int("schedule[cosine].warmup_epochs", 0, warmup_high)
        return p
    p = {
        "model.kernel_size": trial.suggest_categorical("model.kernel_size", [3, 5]),
        "model.hidden": trial.suggest_categorical("model.hidden", [0, 32, 64, 128]),
        "model.dropout": trial.suggest_float("model.dropout", 0.0, 0.5),
        "optimizer.lr": trial.suggest_float("optimizer.lr", 0.003, 0.5, log=True),
        "optimizer.momentum": trial.suggest_float("optimizer.momentum", 0.5, 0.99),
        "optimizer.weight_decay": trial.suggest_float("optimizer.weight_decay", 1e-6, 1e-2, log=True),
        "trainer.batch_size": trial.suggest_categorical("trainer.batch_size", [16, 32, 64]),
        "schedule": trial.suggest_categorical("schedule", ["constant", "step", "exponential", "plateau", "cosine"]),
    }
    option = p["schedule"]
    if option == "step":
        p["schedule[step].step_epochs"] = trial.suggest_int("schedule[step].step_epochs", 3, 12)
        p["schedule[step].factor"] = trial.suggest_float("schedule[step].factor", 0.1, 0.9)
    elif option == "exponential":
        p["schedule[exponential].k"] = trial.suggest_float("schedule[exponential].k", 0.01, 0.3, log=True)
    elif option == "plateau":
        p["schedule[plateau].factor"] = trial.suggest_float("schedule[plateau].factor", 0.1, 0.7)
        p["schedule[plateau].patience"] = trial.suggest_int("schedule[plateau].patience", 1, 5)
    elif option == "cosine":
        p["schedule[cosine].warmup_epochs"] = trial.suggest_int("schedule[cosine].warmup_epochs", 0, warmup_high)
    return p


def run(experiment: str, seed: int, budget_epochs: int, max_epochs: int | None = None) -> dict[str, Any]:
    """The search and the shipped trial's test accuracy.

    Returns:
        ``trials`` (per trial: ``values`` per epoch, ``epochs`` trained, ``params``, ``seed``), ``shipped``
        (the best trial's number, validation accuracy, best epoch and ``test_accuracy``).
    """
    max_epochs = max_epochs or recipes.recipe(experiment).max_epochs
    X, y, split = recipes.load(experiment)
    data = train_val(X, y, split)  # the test samples stay out of the search
    records: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params, trial_seed = suggest(trial, experiment, max_epochs), recipes.trial_seed(seed, trial.number)
        history = recipes.History()
        record = {"number": trial.number, "params": params, "seed": trial_seed, "values": history.values,
                  "epochs": max_epochs}
        records.append(record)
        try:
            result, _ = recipes.train(experiment, params, data, trial_seed, max_epochs, callbacks=[history])
        except Exception as exc:  # Optuna marks the trial failed; it costs the epochs it ran
            record["epochs"] = exc.epoch if isinstance(exc, NonFiniteLossError) else len(history.values)
            raise
        record["epochs"] = result.epochs_run
        trial.set_user_attr("best_epoch", result.best_epoch)
        return result.best_value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=max(1, budget_epochs // max_epochs), catch=(Exception,))
    best = study.best_trial
    shipped = {"trial": best.number, "val_accuracy": best.value, "best_epoch": best.user_attrs["best_epoch"],
               **_ship(experiment, records[best.number], best.user_attrs["best_epoch"], max_epochs)}
    return {"trials": [{k: r[k] for k in ("values", "epochs")} for r in records], "shipped": shipped}


def _ship(experiment: str, record: dict[str, Any], best_epoch: int, max_epochs: int) -> dict[str, Any]:
    test = recipes.test_accuracy(experiment, record["params"], record["seed"], best_epoch, max_epochs)
    return {"test_accuracy": test["test_accuracy"], "val_accuracy_retrained": test["val_accuracy"],
            "params": record["params"], "seed": record["seed"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plain_optuna", description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="mnist1d_cnn", choices=sorted(recipes.RECIPES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-epochs", type=int, default=600)
    parser.add_argument("--max-epochs", type=int, default=None, help="epochs per trial (the experiment's if unset)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out = run(args.experiment, args.seed, args.budget_epochs, args.max_epochs)
    print(json.dumps({**out["shipped"], "n_trials": len(out["trials"]), "wall_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
