"""What the training monitor costs: digits_cnn trained with ``monitor=default`` against ``monitor=off``.

Both variants train the same model (same seed, same batches) side by side in one process, alternating
which goes first, ``--repeats`` times. The monitor changes no training number (early stopping is left
off here so both run the same epochs), so the time ratio is the monitor's cost. Times are the process's
CPU time (torch on ``--threads 1`` computes in this process): on a shared machine, wall-clock time
mostly measures the neighbours. The end-of-trial report (plots, checkpoints, note) is timed
separately, against one trial's training time.

    PYTHONPATH=$PWD python scripts/bench_monitor.py --write-docs

writes the figures into docs/monitor.md (between the ``bench`` markers).
"""

from __future__ import annotations

import argparse
import cProfile
import platform
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from practices.train import fit  # noqa: E402
from sweeps.config._schema import monitor_config  # noqa: E402
from sweeps.config._space import config_for  # noqa: E402
from sweeps.experiment._build import build  # noqa: E402
from sweeps.experiment._experiment import prepare  # noqa: E402
from sweeps.trial._monitor import make_monitor  # noqa: E402
from sweeps.trial._report import report_trial  # noqa: E402

DOC = ROOT / "docs" / "monitor.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _train_seconds(cfg, data, monitor) -> float:
    built = build(cfg, data.in_shape, data.n_classes, seed=0)
    started = time.process_time()
    fit(built.model, built.optimizer, built.scheduler, data, max_epochs=cfg.trainer.max_epochs,
        batch_size=cfg.trainer.batch_size, seed=0, metric=cfg.sweep.metric, callbacks=[monitor] if monitor else [])
    return time.process_time() - started


_ENTRY_POINTS = ("on_fit_start", "on_step_begin", "on_after_backward", "on_step_end", "on_epoch_end", "on_fit_end",
                 "hook")


def _profiled_share(cfg, data) -> float:
    """The monitor's share of a monitored run, from cProfile: the cumulative time of its entry points
    (hooks called by the loop and by torch) over the run's. Insensitive to other processes; the
    profiler's own overhead weighs more on Python code, so this overstates the monitor a little."""
    profile = cProfile.Profile()
    profile.enable()
    _train_seconds(cfg, data, make_monitor(cfg))
    profile.disable()
    stats = pstats.Stats(profile).stats
    total = next(v[3] for (file, _, name), v in stats.items() if name == "fit" and file.endswith("train.py"))
    monitor = sum(v[3] for (file, _, name), v in stats.items() if "practices/monitor/" in file.replace("\\", "/")
                  and name in _ENTRY_POINTS)
    return monitor / total


def _report_seconds(cfg, monitor) -> float:
    with tempfile.TemporaryDirectory() as folder:
        OmegaConf.update(cfg, "sweep.storage", f"sqlite:///{folder}/bench.db")
        study = optuna.create_study(storage=cfg.sweep.storage)
        trial = study.ask()
        started = time.process_time()
        report_trial(trial, monitor, cfg, None)
        return time.process_time() - started


def _spread(values: list[float], fmt: str) -> str:
    return f"min {min(values):{fmt}}, median {statistics.median(values):{fmt}}, max {max(values):{fmt}}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25, help="epochs per timed run (default 25, as digits_cnn)")
    parser.add_argument("--repeats", type=int, default=7, help="pairs of runs (default 7)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--write-docs", action="store_true", help=f"write the result into {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    exp, dataset = prepare(["+experiment=digits_cnn", f"trainer.max_epochs={args.epochs}", "monitor.patience=null"])
    cfg = config_for(exp.cfg, exp.options, {}, {})
    data = dataset.train_val()
    settings = monitor_config(cfg)
    _train_seconds(cfg, data, None)  # warm-up: first-call costs land on neither side
    costs, off_rates, times = [], [], {"off": [], "default": []}
    for repeat in range(args.repeats):
        seconds = {}
        for variant in (("off", "default") if repeat % 2 == 0 else ("default", "off")):
            seconds[variant] = _train_seconds(cfg, data, make_monitor(cfg) if variant == "default" else None)
        costs.append(seconds["default"] / seconds["off"] - 1.0)
        for variant, value in seconds.items():
            times[variant].append(value)
        off_rates.append(len(data.X_train) * args.epochs / seconds["off"])
        print(f"repeat {repeat + 1}: off {seconds['off']:.3f} s, default {seconds['default']:.3f} s CPU, "
              f"cost {costs[-1]:+.1%}", flush=True)
    share = _profiled_share(cfg, data)
    monitor = make_monitor(cfg)
    trial_seconds = _train_seconds(cfg, data, monitor)
    report = [_report_seconds(cfg, monitor) for _ in range(4)]
    command = f"PYTHONPATH=$PWD python scripts/bench_monitor.py --epochs {args.epochs} --repeats {args.repeats} " \
              f"--threads {args.threads}"
    lines = [
        f"Measured with `{command}` on {platform.machine()} {platform.system()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), digits_cnn's base config (batch {cfg.trainer.batch_size}, "
        f"{len(data.X_train)} training samples), {args.epochs} epochs a run, monitor sampling every "
        f"{settings.every_n_steps} steps; CPU time of the process:",
        "",
        f"- training throughput with monitor off: {_spread(off_rates, '.0f')} samples/s;",
        f"- time cost of `monitor=default` over `monitor=off`, {args.repeats} side-by-side pairs: "
        f"{_spread(costs, '+.1%')}; fastest run against fastest run (the least disturbed by other "
        f"processes): {min(times['default']) / min(times['off']) - 1:+.1%} (target: at most +5%);",
        f"- the monitor's own methods and hooks, profiled (cProfile, deterministic): {share:.1%} of a monitored run;",
        f"- the end-of-trial report (3 plots, 2 checkpoints, the note, in SQLite): {_spread(report[1:], '.2f')} s "
        f"per trial (the first, {report[0]:.2f} s, also imports matplotlib), against {trial_seconds:.2f} s of "
        f"training for these {args.epochs} epochs.",
    ]
    print("\n".join(lines))
    if args.write_docs:
        text = DOC.read_text()
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        DOC.write_text(f"{head}{START}\n" + "\n".join(lines) + f"\n{END}{tail}")
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
