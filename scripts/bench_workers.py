"""Trials per hour with 1 and 2 worker processes (one torch thread each) on the quickstart.

Every setting runs side by side in one invocation, alternating, each on a fresh journal file, and
the figures are their ratios (this machine is noisy: compare within one run only). Two rates per run:
the whole command (what a user waits for) and its trial loop alone (from the first trial's start to the
last trial's end, as the storage recorded them: start-up and export left out), each with the report's
plots on (the default) and off (``monitor.plots=false``: no renderer process), to show what each costs.

    python scripts/bench_workers.py [--trials 12] [--epochs 12] [--repeats 3] [--plots both|on]
                                    [--out docs/bench_workers.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLOTS = {"plots on (default)": "true", "plots off": "false"}


def _loop_seconds(storage: str) -> float:
    """From the first trial's start to the last trial's end, as the journal recorded them."""
    import optuna

    study = optuna.load_study(study_name="quickstart", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(storage)))
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    started = min(t.datetime_start for t in trials)
    return (max(t.datetime_complete for t in trials) - started).total_seconds()


def _one(n_workers: int, n_trials: int, n_epochs: int, plots: str) -> tuple[float, float]:
    """Seconds of the whole command and of its trial loop, for one sweep of ``n_trials`` with
    ``n_workers`` processes."""
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        storage = f"{folder}/s.journal"
        command = [sys.executable, "-m", "sweeps", "+experiment=quickstart", f"sweep.n_trials={n_trials}",
                   f"sweep.n_workers={n_workers}", "trainer.num_threads=1", "sweep.pruner=none",
                   f"monitor.plots={plots}", f"trainer.max_epochs={n_epochs}",
                   # Trials per hour of the search: seed-robust selection's re-trainings and the vault's
                   # opening run once per sweep, after the trials (section 4 measures selection).
                   "select=off", "vault.auto_open=false",
                   f"sweep.storage={storage}", f"sweep.export_dir={folder}/exports"]
        if n_workers == 1:
            command.append("sweep.trials_per_worker=1000")  # a worker process too, as with 2
        started = time.perf_counter()
        subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
        return time.perf_counter() - started, _loop_seconds(storage)


def _spread(values: list[float], digits: int = 0) -> str:
    return " | ".join(f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=12, help="epochs per trial (the quickstart's 12)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plots", choices=("both", "on"), default="both", help="'on': the default only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/bench_workers.md")
    args = parser.parse_args()
    kinds = list(PLOTS) if args.plots == "both" else list(PLOTS)[:1]
    settings = [(plots, n) for plots in kinds for n in (1, 2)]
    whole: dict[tuple[str, int], list[float]] = {s: [] for s in settings}
    loop: dict[tuple[str, int], list[float]] = {s: [] for s in settings}
    for repeat in range(args.repeats):
        for plots, n_workers in settings[repeat % len(settings):] + settings[: repeat % len(settings)]:
            command_s, loop_s = _one(n_workers, args.trials, args.epochs, PLOTS[plots])
            whole[(plots, n_workers)].append(args.trials * 3600 / command_s)
            loop[(plots, n_workers)].append(args.trials * 3600 / loop_s)
    lines = [
        "# Parallel scaling: trials per hour, 1 vs 2 workers",
        "",
        f"Quickstart, {args.trials} trials of {args.epochs} epochs, no pruning, one torch thread per worker, journal",
        f"storage; {args.repeats} repeats, the settings interleaved, order rotated; {os.cpu_count()} CPU cores.",
        "`whole command`: composition, validation, worker start-up, trials, export, timed around the",
        "command; `trial loop`: the first trial's start to the last trial's end, as the storage recorded",
        "them. `select=off vault.auto_open=false`: selection's re-trainings and the vault's retrain run once",
        "per sweep, after the trials. `plots off` is `monitor.plots=false` (no renderer process).",
        f"Command: `python scripts/bench_workers.py --trials {args.trials} --epochs {args.epochs} --repeats "
        f"{args.repeats} --plots {args.plots}`",
        "",
        "| plots | workers | whole command: trials/hour min | median | max | trial loop: trials/hour min | median "
        "| max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for plots, n_workers in settings:
        lines.append(f"| {plots} | {n_workers} | {_spread(whole[(plots, n_workers)])} | "
                     f"{_spread(loop[(plots, n_workers)])} |")
    lines += ["", "Speed-up of 2 workers over 1 (per repeat, min | median | max):", ""]
    for plots in kinds:
        for label, rates in (("whole command", whole), ("trial loop", loop)):
            ratios = [two / one for one, two in zip(rates[(plots, 1)], rates[(plots, 2)])]
            lines.append(f"- {plots}, {label}: {_spread(ratios, 2)}")
    lines.append("")
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
