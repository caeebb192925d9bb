"""Trials per hour with 1 and 2 worker processes (one torch thread each) on the quickstart.

Both settings run side by side in one invocation, alternating, each on a fresh journal file, and
the figure is their ratio (this machine is noisy: compare within one run only).

    python scripts/bench_workers.py [--trials 12] [--repeats 3] [--out docs/bench_workers.md]
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


def _one(n_workers: int, n_trials: int) -> float:
    """Seconds for one sweep of ``n_trials`` with ``n_workers`` processes."""
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        command = [sys.executable, "-m", "sweeps", "+experiment=quickstart", f"sweep.n_trials={n_trials}",
                   f"sweep.n_workers={n_workers}", "trainer.num_threads=1", "sweep.pruner=none",
                   # Trials per hour of the search: seed-robust selection's re-trainings and the vault's
                   # opening run once per sweep, after the trials (section 4 measures selection).
                   "select=off", "vault.auto_open=false",
                   f"sweep.storage={folder}/s.journal", f"sweep.export_dir={folder}/exports"]
        if n_workers == 1:
            command.append("sweep.trials_per_worker=1000")  # a worker process too, as with 2
        started = time.perf_counter()
        subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/bench_workers.md")
    args = parser.parse_args()
    seconds: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for n_workers in (1, 2):
            seconds[n_workers].append(_one(n_workers, args.trials))
    per_hour = {n: [args.trials * 3600 / s for s in values] for n, values in seconds.items()}
    ratios = [two / one for one, two in zip(per_hour[1], per_hour[2])]
    lines = [
        "# Parallel scaling: trials per hour, 1 vs 2 workers",
        "",
        f"Quickstart, {args.trials} trials of 12 epochs, no pruning, one torch thread per worker, journal",
        f"storage; {args.repeats} repeats, alternating; {os.cpu_count()} CPU cores. The whole command is timed",
        "(composition, validation, worker start-up, trials, export) with `select=off vault.auto_open=false`:",
        "selection's re-trainings and the vault's retrain run once per sweep, after the trials.",
        f"Command: `python scripts/bench_workers.py --trials {args.trials} --repeats {args.repeats}`",
        "",
        "| workers | trials/hour min | median | max |",
        "|---|---|---|---|",
    ]
    for n, values in per_hour.items():
        lines.append(f"| {n} | {min(values):.0f} | {statistics.median(values):.0f} | {max(values):.0f} |")
    lines += ["", f"Speed-up of 2 workers over 1 (per repeat): min {min(ratios):.2f}, median "
              f"{statistics.median(ratios):.2f}, max {max(ratios):.2f}.", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
