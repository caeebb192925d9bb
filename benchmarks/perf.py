"""Issue 13's benchmarks: thread defaults under load, and the quickstart's framework share.

Section ``threads`` runs the README quickstart (fewer trials) with ``trainer.num_threads`` left to
the default (null: sweeps.experiment._threads), pinned to 1, and at torch's own default (one thread per core),
interleaved, first on an idle machine, then with 2 CPU-burning processes beside it. Every run is
timed by the meters of ``benchmarks._jobs``, which also give the run's framework share.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks._tables import run_jobs, spread, table

__all__ = ["busy_processes", "threads"]

BURN = "while True: pass"


@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[None]:
    """``n`` processes that each keep a core busy, for the duration."""
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(n)]
    try:
        yield
    finally:
        for p in burners:
            p.kill()
            p.wait()


def _variants() -> dict[str, str]:
    from sweeps.experiment._threads import available_cores

    cores = available_cores()
    return {"default (null)": "null", "1 thread": "1", f"torch's default ({cores} threads)": str(cores)}


def _jobs(args: argparse.Namespace, folder: Path, variants: dict[str, str]) -> list[dict]:
    warm = folder / "warm-up"
    warm.mkdir()
    # First-use costs (config caches, lazy imports) land on this uncounted run, not on a variant.
    jobs = [{"kind": "sweep", "label": "warm-up", "folder": str(warm), "num_threads": 1, "overrides": [
        "+experiment=quickstart", "sweep.n_trials=1", "trainer.max_epochs=1", "trainer.num_threads=1",
        "search.schedule.options.cosine.warmup_epochs.high=0", f"sweep.storage=sqlite:///{warm}/s.db",
        f"sweep.export_dir={warm}/exports"]}]
    for repeat in range(args.repeats):
        labels = list(variants)
        for label in labels[repeat % len(labels):] + labels[: repeat % len(labels)]:  # order rotated
            run_dir = folder / f"{len(jobs)}"
            run_dir.mkdir()
            value = variants[label]
            overrides = ["+experiment=quickstart", f"sweep.n_trials={args.threads_trials}",
                         f"trainer.max_epochs={args.threads_epochs}", f"trainer.num_threads={value}",
                         f"sweep.seed={repeat}", f"sweep.storage=sqlite:///{run_dir}/s.db",
                         f"sweep.export_dir={run_dir}/exports"]
            if args.threads_epochs <= 2:  # cosine warmup must stay shorter than the run
                overrides.append(f"search.schedule.options.cosine.warmup_epochs.high={args.threads_epochs - 1}")
            # The harness sets this before the job; the sweep then sets its own per trial.
            threads = int(value) if value != "null" else int(list(variants.values())[-1])
            jobs.append({"kind": "sweep", "label": label, "overrides": overrides, "folder": str(run_dir),
                         "num_threads": threads})
    return jobs


def threads(args: argparse.Namespace, folder: Path) -> list[str]:
    """Item 3: quickstart wall per trial per thread setting, idle and beside 2 busy processes."""
    variants = _variants()
    measured: dict[str, dict[str, list[dict]]] = {}
    for condition, n_busy in (("idle", 0), ("2 busy processes", 2)):
        sub = folder / condition.replace(" ", "-")
        sub.mkdir()
        with busy_processes(n_busy):
            results = run_jobs(_jobs(args, sub, variants), sub)["jobs"]
        measured[condition] = {label: [e["result"] for e in results if e["job"]["label"] == label]
                               for label in variants}
    lines = [f"The README quickstart with {args.threads_trials} trials of {args.threads_epochs} epochs (its own "
             f"search space, pruner and vault), once per `trainer.num_threads` setting, {args.repeats} repeats with "
             "the order rotated; first on the otherwise idle machine, then with 2 processes beside it that each "
             "keep a core busy (`python -c 'while True: pass'`). The default (null) picks from the cores in the "
             "process's affinity mask, `sweep.n_workers` and the model's size (sweeps/experiment/_threads.py): "
             "1 thread for these small models.", ""]
    rows = []
    for condition, by_label in measured.items():
        per_trial = {label: [r["main_s"] / args.threads_trials for r in runs] for label, runs in by_label.items()}
        best = min(statistics.median(v) for v in per_trial.values())
        for label, values in per_trial.items():
            rows.append([condition, label, *spread(values), f"{statistics.median(values) / best:.2f}"])
    lines += table(["machine", "trainer.num_threads", "wall per trial (s): min", "median", "max",
                    "median / best median"], rows)
    idle_default = measured["idle"]["default (null)"]
    share = [(r["main_s"] - r["train_s"] - r["checks_s"] - r["vault_s"]) / r["main_s"] for r in idle_default]
    loop_share = [(r["loop_s"] - r["train_s"] - r["checks_s"]) / r["loop_s"] for r in idle_default]
    lines += ["", "Framework share of the quickstart's wall (idle machine, default threads): time outside trial "
              "training, preflight checks and the vault's retrain, over the run's wall (composition, validation, "
              "study creation, trials, renderer wait, export).", ""]
    lines += table(["figure", "min", "median", "max"], [
        ["whole run: framework share", *spread(share, "{:.3f}")],
        ["trial loop: framework share", *spread(loop_share, "{:.3f}")],
        ["whole run wall (s)", *spread([r["main_s"] for r in idle_default], "{:.1f}")],
    ])
    return lines
