"""Sample efficiency on digits_cnn's search space at a fixed budget of training epochs.

Three methods, each over the same seeds:

- ``sweeps (defaults)``: ``python -m sweeps +experiment=digits_cnn`` as it comes: TPE, median pruning
  and, where this checkout has them, the monitor's divergence stop and the preflight checks;
- ``random search, no pruning``: the same command with ``sweep.sampler=random sweep.pruner=none``
  (and the monitor and preflight off, where this checkout has them);
- ``hydra-optuna-sweeper``: Hydra multirun with the sweeper's TPE, in its own virtual environment
  (``benchmarks/hos/app.py``), the same data, model and training loop; it cannot prune, so each
  trial trains all its epochs.

Every method's validation accuracy is recorded after every epoch, so the best accuracy so far is known
at each cumulative epoch, and each run is cut at exactly the budget.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from benchmarks._tables import ROOT, cnn_epochs, env, run_jobs, spread, table

OURS, RANDOM, HOS = "sweeps (defaults)", "random search, no pruning", "hydra-optuna-sweeper (TPE, multirun)"
HOS_REQUIREMENTS = ["hydra-optuna-sweeper==1.2.0", "optuna<3", "sqlalchemy<2", "hydra-core<1.4", "numpy<2",
                    "scikit-learn", "pandas"]


def _off_overrides() -> list[str]:
    """Turns off the features a plain baseline lacks, where this checkout has them."""
    out = []
    for group in ("monitor", "preflight"):
        if (ROOT / "conf" / group / "off.yaml").exists():
            out.append(f"{group}=off")
    return out


def _sweep_job(method: str, seed: int, budget: int, max_epochs: int, folder: Path) -> dict[str, Any]:
    run_dir = folder / f"{method.split()[0]}-{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{run_dir}/study.db"
    overrides = ["+experiment=digits_cnn", *cnn_epochs(max_epochs), "sweep.n_trials=100000",
                 f"sweep.seed={seed}", "trainer.num_threads=1", f"sweep.storage={storage}",
                 f"sweep.export_dir={run_dir}/exports", "vault.auto_open=false"]
    if method == RANDOM:
        overrides += ["sweep.sampler=random", "sweep.pruner=none", *_off_overrides()]
    return {"kind": "sweep", "method": method, "seed": seed, "overrides": overrides, "storage": storage,
            "budget_epochs": budget, "folder": str(run_dir)}


def ensure_hos_venv(venv: Path) -> Path:
    """The Python of a virtual environment with hydra-optuna-sweeper, made on first use (minutes).

    torch is installed first, pinned, so that pip takes the CPU wheel rather than a CUDA build.
    """
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import hydra_plugins.hydra_optuna_sweeper, torch, sklearn"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)
    subprocess.run(pip + HOS_REQUIREMENTS, check=True)
    return python


def hos_versions(python: Path) -> str:
    code = ("from importlib.metadata import version as v; print(', '.join(f'{p} {v(p)}' for p in "
            "('hydra-optuna-sweeper', 'optuna', 'hydra-core', 'SQLAlchemy', 'torch')))")
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def run_hos(python: Path, seed: int, budget: int, max_epochs: int, folder: Path) -> list[dict[str, Any]]:
    """One multirun of ``ceil(budget / max_epochs)`` trials; each trial's per-epoch accuracies."""
    run_dir = folder / f"hos-{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / "trials.jsonl"
    n_trials = math.ceil(budget / max_epochs)
    command = [str(python), str(ROOT / "benchmarks/hos/app.py"), "-m", f"hydra.sweeper.n_trials={n_trials}",
               f"bench.seed={seed}", f"bench.max_epochs={max_epochs}", f"bench.out={out}",
               f"hydra.sweep.dir={run_dir}/multirun"]
    with open(run_dir / "hydra.log", "w") as log:
        subprocess.run(command, cwd=run_dir, env=env(), stdout=log, stderr=subprocess.STDOUT, check=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return [{"values": r["values"], "epochs": r["epochs"]} for r in sorted(rows, key=lambda r: r["job"])]


def best_so_far(trials: list[dict[str, Any]], budget: int) -> list[float]:
    """The best validation accuracy after each of the first ``budget`` cumulative epochs."""
    curve: list[float] = []
    best = 0.0
    for trial in trials:
        for i in range(trial["epochs"]):
            if len(curve) == budget:
                return curve
            if i < len(trial["values"]) and math.isfinite(trial["values"][i]):
                best = max(best, trial["values"][i])
            curve.append(best)
    return curve + [best] * (budget - len(curve))


def epochs_to(curve: list[float], target: float) -> int | None:
    """Cumulative epochs until the best accuracy reaches ``target``; None if never within the budget."""
    return next((i + 1 for i, v in enumerate(curve) if v >= target), None)


def measure(args: Any, folder: Path, python: Path | None) -> dict[str, Any]:
    """Runs every method on every seed; ours and random interleave in one process, per seed."""
    seeds, budget, max_epochs = list(range(args.seeds)), args.budget_epochs, args.max_epochs
    jobs = [_sweep_job(m, s, budget, max_epochs, folder) for s in seeds for m in (OURS, RANDOM)]
    results = run_jobs(jobs, folder)
    curves: dict[str, list[list[float]]] = {OURS: [], RANDOM: []}
    n_trials: dict[str, list[int]] = {OURS: [], RANDOM: []}
    for entry in results["jobs"]:
        method, trials = entry["job"]["method"], entry["result"]["trials"]
        curves[method].append(best_so_far(trials, budget))
        n_trials[method].append(_trials_within(trials, budget))
    if python is not None:
        curves[HOS], n_trials[HOS] = [], []
        for seed in seeds:
            trials = run_hos(python, seed, budget, max_epochs, folder)
            curves[HOS].append(best_so_far(trials, budget))
            n_trials[HOS].append(_trials_within(trials, budget))
    return {"curves": curves, "n_trials": n_trials}


def _trials_within(trials: list[dict[str, Any]], budget: int) -> int:
    """How many trials started within the budget."""
    spent, n = 0, 0
    for trial in trials:
        if spent >= budget:
            break
        spent, n = spent + trial["epochs"], n + 1
    return n


def plot(curves: dict[str, list[list[float]]], target: float, path: Path) -> None:
    """Best validation accuracy against cumulative epochs: median over seeds, min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    # Distinct styles: ours and random search share their first (random) samples, so lines overlap.
    styles = [{"linewidth": 2.4}, {"linestyle": "--", "linewidth": 1.6}, {"linestyle": ":", "linewidth": 1.8}]
    for (method, runs), style in zip(curves.items(), styles):
        x = range(1, len(runs[0]) + 1)
        columns = list(zip(*runs))
        ax.plot(x, [statistics.median(c) for c in columns], label=f"{method} (median of {len(runs)} seeds)", **style)
        ax.fill_between(x, [min(c) for c in columns], [max(c) for c in columns], alpha=0.15)
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target}")
    ax.set_ylim(max(0.0, target - 0.1), 1.0)  # the race is near the top; early epochs fall below
    ax.set_xlabel("cumulative training epochs")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title("digits_cnn search space: sample efficiency")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(measured: dict[str, Any], args: Any, png_name: str) -> list[str]:
    """The section's tables: accuracy at the budget, epochs to the target, and the ratios to ours."""
    curves, target, budget = measured["curves"], args.target, args.budget_epochs
    to_target = {m: [epochs_to(c, target) for c in runs] for m, runs in curves.items()}
    rows = []
    for method, runs in curves.items():
        reached = [e for e in to_target[method] if e is not None]
        missed = len(runs) - len(reached)
        rows.append([method, *spread([r[-1] for r in runs], "{:.4f}"), *spread(reached, "{:.0f}"),
                     f"{missed} of {len(runs)}", *spread(measured["n_trials"][method], "{:.0f}")])
    lines = table(["method", "best val acc at budget: min", "median", "max", f"epochs to {target}: min", "median",
                   "max", "seeds not reaching it", "trials: min", "median", "max"], rows)
    lines += ["", f"Epochs to reach {target}, baseline over sweeps (per seed; a seed where the baseline missed the "
              f"target within {budget} epochs counts as {budget}, so its ratio is a lower bound, marked >=):", ""]
    ratio_rows = [_ratio_row(method, to_target[method], to_target[OURS], budget) for method in curves if method != OURS]
    lines += table(["baseline", "ratio min", "median", "max", "per seed"], ratio_rows)
    lines += ["", f"![best validation accuracy against cumulative epochs]({png_name})", ""]
    return lines


def _ratio_row(method: str, theirs: list[int | None], ours: list[int | None], budget: int) -> list[str]:
    ratios, texts = [], []
    for t, o in zip(theirs, ours):
        if o is None:
            texts.append("sweeps missed")
            continue
        ratios.append((t or budget) / o)
        texts.append((">=" if t is None else "") + f"{(t or budget) / o:.2f}")
    return [method, *spread(ratios), ", ".join(texts)]
