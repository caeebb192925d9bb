"""Whole sweeps trials against a hand-written loop on CUDA (issue 13), and syncs per training step.

    PYTHONPATH=$PWD python scripts/bench_cuda.py [--epochs 5] [--repeats 3] [--replicate 20] [--out FILE]

The digits, replicated ``--replicate`` times (so that an epoch is long enough to time), digits_cnn's
CNN (kernel 3, hidden 64), SGD with momentum, batch 32. Variants, interleaved with the order rotated:
the minimal hand-written loop, ``practices.train.fit``, and one whole trial through the driver's
``Objective`` with ``monitor=off`` and ``monitor=default`` (in-memory storage; its plots drawn after
the timed trial). Each variant moves the data to the GPU once and ends with a synchronisation.
Also counts host-device synchronisations (``torch.cuda.set_sync_debug_mode``) over a monitored run:
there should be about one per sampled step and a few per epoch, none per ordinary step.
Prints a Markdown table for docs/gpu.md. Without CUDA it prints one line and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--replicate", type=int, default=20, help="copies of digits' training split")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    return parser.parse_args(argv)


def _data(replicate: int):
    from practices.data import TrainVal
    from sweeps.experiment._experiment import prepare

    _, dataset = prepare(["+experiment=digits_cnn", "sweep.storage=sqlite:///:memory:"])
    d = dataset.train_val()
    return TrainVal(d.X_train.repeat(replicate, *[1] * (d.X_train.dim() - 1)), d.y_train.repeat(replicate),
                    d.X_val, d.y_val, d.n_classes)


def _hand(data, epochs: int, seed: int) -> None:
    from torch.nn import functional as F

    from practices.models import CNN
    from practices.train import evaluate

    device = torch.device("cuda")
    data = data.to(device)
    torch.manual_seed(seed)
    model = CNN(data.in_shape, data.n_classes, kernel_size=3, hidden=64, dropout=0.0).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-6)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(data.X_train), generator=generator).to(device)
        for start in range(0, len(order), 32):
            index = order[start : start + 32]
            loss = F.cross_entropy(model(data.X_train[index]), data.y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        evaluate(model, data.X_val, data.y_val)


def _fit(data, epochs: int, seed: int, callbacks=()) -> None:
    from practices.models import CNN
    from practices.schedules import constant
    from practices.train import fit

    device = torch.device("cuda")
    data = data.to(device)
    torch.manual_seed(seed)
    model = CNN(data.in_shape, data.n_classes, kernel_size=3, hidden=64, dropout=0.0).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-6)
    fit(model, optimizer, constant(optimizer), data, max_epochs=epochs, batch_size=32, seed=seed,
        callbacks=list(callbacks))


def _sweeps_trial(monitor: str, epochs: int, data, folder: str):
    import optuna

    from benchmarks._loops import PARAMS
    from sweeps.experiment._experiment import prepare
    from sweeps.trial._objective import Objective

    exp, _ = prepare(["+experiment=digits_cnn", f"trainer.max_epochs={epochs}", "trainer.device=cuda",
                      f"search.schedule.options.cosine.warmup_epochs.high={min(5, epochs - 1)}",
                      "sweep.pruner=none", f"monitor={monitor}", f"sweep.storage=sqlite:///{folder}/unused.db",
                      f"sweep.artifact_dir={folder}/artifacts"])
    objective = Objective(exp, data)

    cache: dict = {}

    def run(data, epochs: int, seed: int) -> None:
        study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
        for key, value in cache.items():  # the preflight ran once for this architecture, as in a sweep
            study.set_user_attr(key, value)
        study.enqueue_trial(PARAMS)
        study.optimize(objective, n_trials=1)
        cache.update({k: v for k, v in study.user_attrs.items() if k.startswith("preflight.cache.")})

    run.close = objective.close  # type: ignore[attr-defined]
    return run


def _syncs(data, epochs: int) -> tuple[int, int, int]:
    """(synchronisations, optimizer steps, sampled steps) over a monitored ``fit``."""
    from practices.monitor import Monitor

    monitor = Monitor(every_n_steps=25, checkpoints="best_and_last")
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            _fit(data, epochs, 0, [monitor])
        finally:
            torch.cuda.set_sync_debug_mode("default")
    steps = epochs * -(-len(data.X_train) // 32)
    syncs = sum("synchroniz" in str(w.message).lower() for w in caught)
    return syncs, steps, len(monitor.sampled_steps)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if not torch.cuda.is_available():
        print("bench_cuda: no CUDA device here (torch.cuda.is_available() is False); nothing measured")
        return 0
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = _data(args.replicate)
    with tempfile.TemporaryDirectory() as folder:
        variants = {"hand-written loop": lambda d, e, s: _hand(d, e, s), "practices.train.fit": _fit,
                    "sweeps trial (monitor=off)": _sweeps_trial("off", args.epochs, data, folder),
                    "sweeps trial (monitor=default)": _sweeps_trial("default", args.epochs, data, folder)}
        names = list(variants)
        for name in names:  # untimed: CUDA context, kernels, the preflight cache
            variants[name](data, args.epochs, 0)
            getattr(variants[name], "close", lambda: None)()
        rates: dict[str, list[float]] = {n: [] for n in names}
        for repeat in range(args.repeats):
            for name in names[repeat % len(names):] + names[: repeat % len(names)]:
                torch.cuda.synchronize()
                started = time.perf_counter()
                variants[name](data, args.epochs, repeat)
                torch.cuda.synchronize()
                rates[name].append(len(data.X_train) * args.epochs / (time.perf_counter() - started))
                getattr(variants[name], "close", lambda: None)()
        syncs, steps, sampled = _syncs(data, 1)
    hand = rates["hand-written loop"]
    lines = [f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}: digits x{args.replicate} "
             f"({len(data.X_train)} training samples), digits_cnn's CNN, batch 32, {args.epochs} epochs, "
             f"{args.repeats} repeats interleaved. Command: `python scripts/bench_cuda.py --epochs {args.epochs} "
             f"--repeats {args.repeats} --replicate {args.replicate}`.", "",
             "| loop | samples/s median | ratio to hand loop: min | median | max |", "|---|---|---|---|---|"]
    for name, values in rates.items():
        ratios = [v / h for v, h in zip(values, hand)]
        lines.append(f"| {name} | {statistics.median(values):.0f} | {min(ratios):.2f} | "
                     f"{statistics.median(ratios):.2f} | {max(ratios):.2f} |")
    lines += ["", f"Host-device synchronisations in one monitored epoch: {syncs} over {steps} optimizer steps, "
              f"{sampled} of them sampled by the monitor (every 25th)."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
