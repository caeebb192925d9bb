"""Sample efficiency at a fixed budget of training epochs, and the sealed test accuracy of what each
search method would ship: five methods side by side, each over the same seeds.

- ``sweeps (defaults)``: ``python -m sweeps +experiment=<experiment>`` as it comes: TPE, median
  pruning, the monitor, preflight checks and seed-robust selection (``select=default``), the test
  vault opened at the end;
- ``sweeps, select=off``: the same with ``select=off`` (the best single trial ships);
- ``random search, no pruning``: the same command with ``sweep.sampler=random sweep.pruner=none
  monitor=off preflight=off select=off``;
- ``plain Optuna TPE, no pruning``: ``benchmarks/plain_optuna.py``, a hand-written Optuna loop;
- ``hydra-optuna-sweeper``: Hydra multirun with the sweeper's TPE in its own virtual environment
  (``benchmarks/hos/app.py``); it cannot prune, so each trial trains all its epochs.

Every method's validation accuracy is recorded after every epoch, so the best accuracy so far is known
at each cumulative epoch. A method gets no further trial once another full trial could pass the
budget, so none trains more than the budget; seed-robust selection's re-trainings come out of the
same budget (they count as epochs, and their values do not count as found configurations).
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from benchmarks._tables import ROOT, env, run_jobs, spread, table
from sweeps.study._stats import compare

OURS, OURS_OFF = "sweeps (defaults)", "sweeps, select=off"
RANDOM, PLAIN = "random search, no pruning", "plain Optuna TPE, no pruning"
HOS = "hydra-optuna-sweeper (TPE, multirun)"
METHODS = (OURS, OURS_OFF, RANDOM, PLAIN, HOS)
# --efficiency-methods names; `defaults` is always run (the targets are its).
METHOD_NAMES = {"defaults": OURS, "select-off": OURS_OFF, "random": RANDOM, "plain": PLAIN, "hos": HOS}
HOS_REQUIREMENTS = ["hydra-optuna-sweeper==1.2.0", "optuna<3", "sqlalchemy<2", "hydra-core<1.4", "numpy<2",
                    "scikit-learn", "pandas"]
# Greydanus 2020, "Scaling down deep learning" (MNIST-1D), test accuracies of its baselines.
PAPER = [("logistic regression", 0.32), ("MLP", 0.68), ("CNN", 0.94), ("GRU", 0.91)]
TARGET_TEST, TARGET_CPU_MIN, TARGET_RATIO = 0.95, 15.0, 0.5


def epochs_overrides(experiment: str, max_epochs: int) -> list[str]:
    """``trainer.max_epochs`` and, for short trials, the cosine warmup's bound kept below it (the
    build check refuses a warmup as long as the run: a --quick budget trains 2 epochs)."""
    from benchmarks.recipes import recipe

    high = recipe(experiment).cosine_warmup_high
    out = [f"trainer.max_epochs={max_epochs}"]
    if max_epochs <= high:
        out.append(f"search.schedule.options.cosine.warmup_epochs.high={max_epochs - 1}")
    return out


def variant_name(overrides: list[str]) -> str:
    """The method row of an ``--efficiency-variant``: sweeps' defaults with ``overrides`` appended."""
    return "sweeps, " + " ".join(overrides)


def methods_of(args: Any, python: Path | None) -> dict[str, list[str]]:
    """The methods this run compares, in order, each with the overrides it adds to sweeps' defaults
    (``--efficiency-variant``; none for the standard methods); hydra-optuna-sweeper only with ``python``."""
    chosen = {METHOD_NAMES[name] for name in args.efficiency_methods}
    out: dict[str, list[str]] = {m: [] for m in METHODS if m in chosen and (m != HOS or python is not None)}
    for overrides in args.efficiency_variants:
        out[variant_name(overrides)] = list(overrides)
    return out


def _sweep_job(method: str, seed: int, args: Any, folder: Path, extra: tuple[str, ...] = (),
               slug: str = "") -> dict[str, Any]:
    run_dir = folder / f"{slug or _slug(method)}-{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    storage, export_dir = f"sqlite:///{run_dir}/study.db", f"{run_dir}/exports"
    overrides = [f"+experiment={args.efficiency_experiment}", *epochs_overrides(args.efficiency_experiment,
                 args.max_epochs), "sweep.n_trials=100000", f"sweep.seed={seed}", "trainer.num_threads=1",
                 f"sweep.storage={storage}", f"sweep.export_dir={export_dir}", "vault.auto_open=true"]
    if method == OURS_OFF:
        overrides.append("select=off")
    if method == RANDOM:
        overrides += ["sweep.sampler=random", "sweep.pruner=none", "monitor=off", "preflight=off", "select=off"]
    overrides += list(extra)  # last: a variant's values win over the experiment's
    return {"kind": "sweep", "method": method, "seed": seed, "overrides": overrides, "storage": storage,
            "study": args.efficiency_experiment, "export_dir": export_dir, "budget_epochs": args.budget_epochs,
            "max_epochs": args.max_epochs, "folder": str(run_dir)}


def _slug(method: str) -> str:
    return method.split()[0].split(",")[0].lower() + ("-off" if "select=off" in method else "")


def ensure_hos_venv(venv: Path) -> Path:
    """The Python of a virtual environment with hydra-optuna-sweeper, made on first use (minutes).

    torch is installed first, pinned, so that pip takes the CPU wheel rather than a CUDA build. The
    sweeper's trials read the samples the harness saved, so the environment needs no data package.
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


def _hos_job(python: Path, seed: int, args: Any, folder: Path, data: Path) -> dict[str, Any]:
    run_dir = folder / f"hos-{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return {"kind": "hos", "method": HOS, "seed": seed, "python": str(python), "experiment": args.efficiency_experiment,
            "n_trials": max(1, args.budget_epochs // args.max_epochs), "max_epochs": args.max_epochs,
            "data": str(data), "folder": str(run_dir)}


def hos_job(job: dict[str, Any]) -> dict[str, Any]:
    """One multirun of ``n_trials`` trials (run by ``benchmarks._jobs``); each trial's per-epoch
    accuracies, and the sweeper's best trial shipped by the baselines' rule."""
    from benchmarks import recipes

    run_dir = Path(job["folder"])
    out = run_dir / "trials.jsonl"
    out.unlink(missing_ok=True)
    command = [job["python"], str(ROOT / "benchmarks/hos/app.py"), "--config-name", job["experiment"], "-m",
               f"hydra.sweeper.n_trials={job['n_trials']}", f"bench.seed={job['seed']}",
               f"bench.max_epochs={job['max_epochs']}", f"bench.data={job['data']}", f"bench.out={out}",
               f"hydra.sweep.dir={run_dir}/multirun"]
    with open(run_dir / "hydra.log", "w") as log:
        subprocess.run(command, cwd=run_dir, env=env(), stdout=log, stderr=subprocess.STDOUT, check=True)
    rows = sorted((json.loads(line) for line in out.read_text().splitlines()), key=lambda r: r["job"])
    best = max(rows, key=lambda r: r["value"])  # the sweeper's best trial: the first with the best value
    test = recipes.test_accuracy(job["experiment"], best["params"], best["seed"], best["best_epoch"] or 1,
                                 job["max_epochs"])
    shipped = {"trial": best["job"], "val_accuracy": best["value"], "best_epoch": best["best_epoch"],
               "test_accuracy": test["test_accuracy"], "val_accuracy_retrained": test["val_accuracy"],
               "params": best["params"], "seed": best["seed"]}
    return {"trials": [{"values": r["values"], "epochs": r["epochs"]} for r in rows], "shipped": shipped}


def best_so_far(trials: list[dict[str, Any]], budget: int) -> list[float]:
    """The best validation accuracy after each of the first ``budget`` cumulative epochs. Trials
    of seed-robust selection (``phase: select``) cost their epochs and find nothing new."""
    curve: list[float] = []
    best = 0.0
    for trial in trials:
        searching = trial.get("phase", "search") == "search"
        for i in range(trial["epochs"]):
            if len(curve) == budget:
                return curve
            if searching and i < len(trial["values"]) and math.isfinite(trial["values"][i]):
                best = max(best, trial["values"][i])
            curve.append(best)
    return curve + [best] * (budget - len(curve))


def epochs_to(curve: list[float], target: float) -> int | None:
    """Cumulative epochs until the best accuracy reaches ``target``; None if never within the budget."""
    return next((i + 1 for i, v in enumerate(curve) if v >= target), None)


def measure(args: Any, folder: Path, python: Path | None) -> dict[str, Any]:
    """Runs every method on every seed, ``args.parallel`` jobs at a time, the methods interleaved."""
    from benchmarks import recipes

    data = folder / "trainval.npz"
    recipes.save_train_val(args.efficiency_experiment, str(data))
    methods = methods_of(args, python)
    slugs = {m: f"variant{i}" for i, m in enumerate(m for m, extra in methods.items() if extra)}
    jobs = []
    for seed in range(args.seeds):
        for method, extra in methods.items():
            if extra:
                jobs.append(_sweep_job(method, seed, args, folder, tuple(extra), slug=slugs[method]))
            elif method == HOS:
                jobs.append(_hos_job(python, seed, args, folder, data))
            elif method == PLAIN:
                jobs.append({"kind": "plain", "method": PLAIN, "seed": seed, "experiment": args.efficiency_experiment,
                             "budget_epochs": args.budget_epochs, "max_epochs": args.max_epochs})
            else:
                jobs.append(_sweep_job(method, seed, args, folder))
    return collect(run_jobs(jobs, folder, parallel=args.parallel), list(methods), args.budget_epochs)


def collect(results: dict[str, Any], methods: list[str], budget_epochs: int) -> dict[str, Any]:
    """Per method, over seeds in job order: best-so-far curves, trials, what shipped, CPU and wall
    seconds, epochs (selection's apart), from the jobs' results (``run_jobs``)."""
    out: dict[str, Any] = {m: {"curves": [], "trials": [], "shipped": [], "cpu_s": [], "job_s": [], "epochs": [],
                               "select_epochs": []} for m in methods}
    for entry in results["jobs"]:
        method, result = entry["job"]["method"], entry["result"]
        trials = result["trials"]
        row = out[method]
        row["curves"].append(best_so_far(trials, budget_epochs))
        row["trials"].append(sum(1 for t in trials if t.get("phase", "search") == "search"))
        row["epochs"].append(sum(t["epochs"] for t in trials))
        row["select_epochs"].append(sum(t["epochs"] for t in trials if t.get("phase") == "select"))
        row["shipped"].append(result.get("shipped"))
        row["cpu_s"].append(result["cpu_s"])
        row["job_s"].append(result["job_s"])
    return out


def plot(measured: dict[str, Any], path: Path, title: str) -> None:
    """Best validation accuracy against cumulative epochs: median over seeds, min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    # Distinct styles: sweeps' variants and random search share their first (random) samples, so lines overlap.
    styles = [{"linewidth": 2.4}, {"linestyle": "--", "linewidth": 1.8}, {"linestyle": ":", "linewidth": 1.8},
              {"linestyle": "-.", "linewidth": 1.6}, {"linestyle": (0, (5, 1, 1, 1)), "linewidth": 1.6}]
    finals = []
    for (method, row), style in zip(measured.items(), itertools.cycle(styles)):
        runs = row["curves"]
        x = range(1, len(runs[0]) + 1)
        columns = list(zip(*runs))
        medians = [statistics.median(c) for c in columns]
        finals.append(medians[len(medians) // 5])
        ax.plot(x, medians, label=f"{method} (median of {len(runs)} seeds)", **style)
        ax.fill_between(x, [min(c) for c in columns], [max(c) for c in columns], alpha=0.12)
    selection = measured.get(OURS, {}).get("select_epochs")
    if selection and max(selection) > 0:
        start = statistics.median(e - s for e, s in zip(measured[OURS]["epochs"], selection))
        ax.axvline(start, color="grey", linestyle=":", linewidth=1,
                   label=f"{OURS}: seed-robust selection from here (median)")
    ax.set_ylim(max(0.0, min(finals) - 0.05), 1.0)  # the race is near the top; early epochs fall below
    ax.set_xlabel("cumulative training epochs (selection re-trainings included)")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _tests(row: dict[str, Any]) -> list[float]:
    return [s["test_accuracy"] for s in row["shipped"] if s is not None]


def _to_hos(measured: dict[str, Any], budget: int) -> dict[str, list[tuple[int | None, int]]]:
    """Per method and seed: (epochs to reach that seed's HOS final best or None, HOS's own epochs to it)."""
    hos = measured[HOS]["curves"]
    out = {}
    for method, row in measured.items():
        pairs = []
        for curve, hos_curve in zip(row["curves"], hos):
            target = hos_curve[-1]
            pairs.append((epochs_to(curve, target), epochs_to(hos_curve, target) or budget))
        out[method] = pairs
    return out


def _ratios(pairs: list[tuple[int | None, int]], budget: int) -> tuple[list[float], str]:
    """Ratios to HOS's epochs (a seed that missed counts the budget: a lower bound, marked >=)."""
    values, texts = [], []
    for ours, theirs in pairs:
        values.append((ours or budget) / theirs)
        texts.append((">=" if ours is None else "") + f"{(ours or budget) / theirs:.2f}")
    return values, ", ".join(texts)


def report(measured: dict[str, Any], args: Any, png_name: str) -> list[str]:
    """The section's tables (search, shipped test accuracy with the paper's reference rows), the
    targets with met or missed, and where sweeps is not ahead."""
    budget = args.budget_epochs
    lines = ["Search: best validation accuracy within the budget, and the cumulative epochs to reach the final "
             "best validation accuracy of hydra-optuna-sweeper on the same seed (its ratio to the epochs the "
             "sweeper took to get there; a method that never reached it counts the whole budget, a lower bound "
             "marked >=).", ""]
    to_hos = _to_hos(measured, budget) if HOS in measured else None
    rows = []
    for method, row in measured.items():
        cells = [method, *spread(row["trials"], "{:.0f}"), *spread([c[-1] for c in row["curves"]], "{:.4f}")]
        if to_hos is not None:
            reached = [e for e, _ in to_hos[method] if e is not None]
            ratios, texts = _ratios(to_hos[method], budget)
            cells += [*spread(reached, "{:.0f}"), f"{len(reached)} of {len(to_hos[method])}",
                      f"{statistics.median(ratios):.2f}", texts]
        rows.append(cells)
    header = ["method", "trials: min", "median", "max", "best val acc at budget: min", "median", "max"]
    if to_hos is not None:
        header += ["epochs to HOS's best: min", "median", "max", "seeds reaching it", "ratio to HOS: median",
                   "per seed"]
    lines += table(header, rows)
    lines += ["", f"![best validation accuracy against cumulative epochs]({png_name})", "",
              "Shipped: the sealed test accuracy of the configuration each method would ship, over seeds; the "
              "cost of one sweep (CPU minutes of its process and children, and wall seconds, with another job "
              "beside it on the other core). The paper's test accuracies (Greydanus 2020, its own 4000/1000 "
              "split and training) are reference rows.", ""]
    rows = []
    for method, row in measured.items():
        tests = _tests(row)
        cpu_min = [c / 60 for c in row["cpu_s"]]
        rows.append([method, _fmt(statistics.mean(tests) if tests else None), *spread(tests, "{:.4f}"),
                     _fmt(max(tests) - min(tests) if tests else None), f"{len(tests)} of {len(row['shipped'])}",
                     *spread(cpu_min, "{:.1f}"), f"{statistics.median(row['job_s']):.0f}",
                     f"{statistics.median(row['epochs']):.0f}"])
    for name, accuracy in PAPER:
        rows.append([f"reference: paper's {name}", f"{accuracy:.2f}", "-", f"{accuracy:.2f}", "-", "-", "-", "-", "-",
                     "-", "-", "-"])
    lines += table(["method", "test acc: mean", "min", "median", "max", "spread (max - min)", "seeds shipped",
                    "CPU min per sweep: min", "median", "max", "wall s per sweep: median",
                    "epochs trained (median)"], rows)
    lines += ["", *_paired(measured), "", *_targets(measured, to_hos, budget), "",
              *_not_ahead(measured, to_hos, budget)]
    return lines


def _per_seed_tests(row: dict[str, Any]) -> list[float | None]:
    return [None if s is None else s["test_accuracy"] for s in row["shipped"]]


def _paired(measured: dict[str, Any]) -> list[str]:
    """The shipped test accuracies seed by seed, and sweeps' defaults against each method, paired by seed."""
    ours = _per_seed_tests(measured[OURS])
    lines = ["Sealed test accuracy per seed (seeds 0 to n-1), and `sweeps (defaults)` against each method paired "
             "by seed: the median difference (positive: sweeps (defaults) tested better), seeds won, tied and "
             "lost, and the two-sided Wilcoxon signed-rank p-value (scipy.stats). With n seeds no p-value can be "
             f"below 2/2^n ({2 / 2 ** len(ours):.4f} for {len(ours)}); a gap it cannot tell from seed noise is "
             "not shown to be a gap between the methods.", ""]
    rows = []
    for method, row in measured.items():
        tests = _per_seed_tests(row)
        cells = [method, ", ".join("-" if t is None else f"{t:.4f}" for t in tests)]
        pairs = [(a, b) for a, b in zip(ours, tests) if a is not None and b is not None]
        if method == OURS or len(pairs) < 2:
            rows.append(cells + ["-", "-", "-"])
            continue
        result = compare(ours, tests, maximize=True)  # what seed-robust selection reports, on test accuracy
        won, lost = sum(a > b for a, b in pairs), sum(a < b for a, b in pairs)
        rows.append(cells + [f"{result.effect:+.4f}", f"{won} / {len(pairs) - won - lost} / {lost}",
                             f"{result.p_wilcoxon:.3f}"])
    return lines + table(["method", "test acc per seed", "sweeps (defaults) minus it: median",
                          "won / tied / lost", "Wilcoxon p"], rows)


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _targets(measured: dict[str, Any], to_hos: dict[str, Any] | None, budget: int) -> list[str]:
    ours, off = measured[OURS], measured.get(OURS_OFF)
    lines = ["Targets (issue 12), for `sweeps (defaults)`:", ""]
    tests, cpu = _tests(ours), max(ours["cpu_s"]) / 60
    median = _median(tests)
    if median is None:
        lines.append(f"- sealed test accuracy >= {TARGET_TEST} (median over seeds): **no result** (the vault never "
                     "opened; see the sweep logs)")
    else:
        met = median >= TARGET_TEST and cpu <= TARGET_CPU_MIN
        gap = [] if median >= TARGET_TEST else [f"{TARGET_TEST - median:.4f} short"]
        gap += [] if cpu <= TARGET_CPU_MIN else [f"{cpu:.1f} CPU minutes, over {TARGET_CPU_MIN:.0f}"]
        lines.append(f"- sealed test accuracy >= {TARGET_TEST} (median over {len(tests)} "
                     f"seed{'s' * (len(tests) != 1)}) within {TARGET_CPU_MIN:.0f} CPU minutes per sweep: "
                     f"**{'met' if met else 'missed'}** (median {median:.4f}; the costliest sweep {cpu:.1f} CPU "
                     "minutes)" + ("" if met else f": {'; '.join(gap)}"))
        if not met and median < TARGET_TEST:
            select = statistics.median(ours["select_epochs"])
            lines[-1] += (f". Within {budget} epochs, sweeps (defaults) searched for {budget - select:.0f} (median) "
                          f"and spent {select:.0f} on the selection's re-trainings; the target's {TARGET_CPU_MIN:.0f} "
                          f"CPU minutes would buy about {_epochs_in(ours, TARGET_CPU_MIN)} epochs per sweep at this "
                          "run's speed: a larger --budget-epochs is the first thing to try")
    off_tests = _tests(off) if off else []
    if len(tests) > 1 and len(off_tests) > 1:
        on_spread, off_spread = max(tests) - min(tests), max(off_tests) - min(off_tests)
        met = on_spread < off_spread
        lines.append(f"- spread (max - min) of the sealed test accuracy smaller with select on than off: "
                     f"**{'met' if met else 'missed'}** ({on_spread:.4f} on, {off_spread:.4f} off"
                     + ("" if met else f": on is {on_spread - off_spread:.4f} wider") + ")")
    else:
        lines.append("- spread smaller with select on than off: not measured in this run (needs 2 seeds of each)")
    if to_hos is None:
        lines.append(f"- epochs to reach hydra-optuna-sweeper's final best <= {TARGET_RATIO}x its epochs: not measured "
                     "(--skip hos)")
    else:
        ratios, texts = _ratios(to_hos[OURS], budget)
        median_ratio = statistics.median(ratios)
        met = median_ratio <= TARGET_RATIO
        lines.append(f"- epochs to reach hydra-optuna-sweeper's final best validation accuracy <= {TARGET_RATIO}x the "
                     f"sweeper's epochs (median over seeds): **{'met' if met else 'missed'}** "
                     f"(median {median_ratio:.2f}"
                     + ("" if met else f", {median_ratio / TARGET_RATIO:.1f}x the target") + f"; per seed {texts})")
    return lines


def _epochs_in(row: dict[str, Any], cpu_min: float) -> int:
    """Epochs (selection included) that ``cpu_min`` CPU minutes buy at the median speed of ``row``'s sweeps."""
    per_epoch = statistics.median(c / e for c, e in zip(row["cpu_s"], row["epochs"]) if e)
    return int(cpu_min * 60 / per_epoch)


def _not_ahead(measured: dict[str, Any], to_hos: dict[str, Any] | None, budget: int) -> list[str]:
    """Where a baseline is at least as good as sweeps' defaults, by median over seeds."""
    ours = measured[OURS]
    figures = [("median sealed test accuracy", lambda r: _median(_tests(r)), True),
               ("median best validation accuracy at the budget", lambda r: _median([c[-1] for c in r["curves"]]), True),
               ("median CPU minutes per sweep", lambda r: _median([c / 60 for c in r["cpu_s"]]), False)]
    if to_hos is not None:
        figures.append(("median epochs to hydra-optuna-sweeper's final best",
                        lambda r: _median([e or budget for e, _ in to_hos[_name(measured, r)]]), False))
    found = []
    for label, figure, higher in figures:
        mine = figure(ours)
        for method, row in measured.items():
            theirs = figure(row)
            if method == OURS or mine is None or theirs is None:
                continue
            if (theirs >= mine) if higher else (theirs <= mine):
                found.append(f"{label}: {method} {theirs:.4g} against {mine:.4g}")
    if not found:
        return ["Where sweeps (defaults) is not ahead: nowhere in these figures."]
    return ["Where sweeps (defaults) is not ahead (a baseline as good or better, medians over seeds):", "",
            *[f"- {text}" for text in found]]


def _name(measured: dict[str, Any], row: dict[str, Any]) -> str:
    return next(m for m, r in measured.items() if r is row)
