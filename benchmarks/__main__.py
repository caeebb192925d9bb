"""Benchmarks against peers; writes docs/benchmarks.md and its PNG plots.

    PYTHONPATH=$PWD python -m benchmarks              # everything (about 2 hours on 2 idle cores)
    PYTHONPATH=$PWD python -m benchmarks --quick --skip hos,workers,threads,growth,scaling   # the smoke test's budget
    PYTHONPATH=$PWD python -m benchmarks --only threads --out /tmp/threads.md   # one section alone
    PYTHONPATH=$PWD python -m benchmarks --only efficiency   # sample efficiency alone (MNIST-1D, 5 methods x 5 seeds)
    PYTHONPATH=$PWD python -m benchmarks --only efficiency --efficiency-methods defaults,hos \
        --efficiency-variant 'sweep.pruner_warmup_epochs=20' --out /tmp/warmup.md   # a variant beside the defaults

Every figure compares variants measured side by side in one run, interleaved, and prints the min,
median and max over repeats (or seeds): these machines are noisy, so compare within one run only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from benchmarks import efficiency, perf, storage_growth, storage_scaling
from benchmarks._tables import ROOT, cnn_epochs, load, run_jobs, spread, table
from benchmarks.recipes import RECIPES

# The sample-efficiency budget per method and seed: 60 full mnist1d_cnn trials of 40 epochs, of which
# select's default re-trainings (5 configurations x 2 seeds) take at most 400, so the search keeps 2,000.
# About 5 CPU minutes a sweep on this machine, a third of the 15 that issue 12's target allows; at 1,200
# the re-trainings took a third of the budget.
BUDGET_EPOCHS = 2400
SECTIONS = ("overhead", "throughput", "preflight", "efficiency", "hos", "workers", "threads", "growth", "scaling")
NOT_AVAILABLE = "Not available in this checkout"


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md",
                        help="the Markdown file; PNGs go beside it")
    parser.add_argument("--quick", action="store_true", help="tiny budgets (smoke test): figures meaningless")
    parser.add_argument("--skip", default="", help=f"comma-separated sections to leave out: {','.join(SECTIONS)}")
    parser.add_argument("--only", default="", help="comma-separated sections to run, the others skipped")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each timed comparison")
    parser.add_argument("--overhead-trials", type=int, default=20)
    parser.add_argument("--overhead-epochs", type=int, default=6, help="epochs per trial in the overhead sweeps")
    parser.add_argument("--throughput-epochs", type=int, default=5)
    parser.add_argument("--preflight-trials", type=int, default=6)
    parser.add_argument("--efficiency-experiment", default="mnist1d_cnn", choices=sorted(RECIPES),
                        help="the experiment of the sample-efficiency section (its baselines: benchmarks/recipes.py)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the sample-efficiency comparison")
    parser.add_argument("--efficiency-methods", default=",".join(efficiency.METHOD_NAMES),
                        help="comma-separated methods of the sample-efficiency comparison (defaults always runs): "
                             + ",".join(efficiency.METHOD_NAMES))
    parser.add_argument("--efficiency-variant", dest="efficiency_variants", action="append", default=[],
                        metavar="OVERRIDES", help="another method: sweeps' defaults with these space-separated "
                        "overrides (e.g. 'sweep.pruner_warmup_epochs=20'); repeat for more")
    parser.add_argument("--budget-epochs", type=int, default=BUDGET_EPOCHS,
                        help="training epochs per method and seed, selection re-trainings included")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="epochs of a full trial (default: the experiment's; mnist1d_cnn 40, digits_cnn 25)")
    parser.add_argument("--parallel", type=int, default=2,
                        help="sample-efficiency jobs (one method on one seed) run at a time, one torch thread each")
    parser.add_argument("--workers-trials", type=int, default=12)
    parser.add_argument("--threads-trials", type=int, default=8, help="quickstart trials per run (threads section)")
    parser.add_argument("--threads-epochs", type=int, default=12, help="epochs per quickstart trial (threads section)")
    parser.add_argument("--hos-venv", type=Path, default=ROOT / ".bench" / "venv-hos",
                        help="virtual environment for hydra-optuna-sweeper (made on first use)")
    storage_growth.add_arguments(parser)
    storage_scaling.add_arguments(parser)
    args = parser.parse_args(argv)
    args.skip = {s for s in args.skip.split(",") if s}
    only = {s for s in args.only.split(",") if s}
    if only:
        args.skip |= set(SECTIONS) - only - ({"hos"} if "efficiency" in only else set())
    unknown = (args.skip | only) - set(SECTIONS)
    if unknown:
        parser.error(f"--skip: unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    args.efficiency_methods = [m for m in args.efficiency_methods.split(",") if m] + ["defaults"]
    unknown = set(args.efficiency_methods) - set(efficiency.METHOD_NAMES)
    if unknown:
        parser.error(f"--efficiency-methods: unknown methods {sorted(unknown)}; choose from "
                     f"{list(efficiency.METHOD_NAMES)}")
    args.efficiency_methods = list(dict.fromkeys(args.efficiency_methods))
    if "hos" not in args.efficiency_methods:
        args.skip.add("hos")
    args.efficiency_variants = [shlex.split(v) for v in args.efficiency_variants]
    if any(not v or not all("=" in o for o in v) for v in args.efficiency_variants):
        parser.error(f"--efficiency-variant: expected space-separated KEY=VALUE overrides, got "
                     f"{[' '.join(v) for v in args.efficiency_variants]}")
    if args.quick:
        args.repeats, args.overhead_trials, args.overhead_epochs, args.throughput_epochs = 1, 3, 1, 1
        args.preflight_trials, args.budget_epochs, args.max_epochs, args.workers_trials = 2, 30, 2, 2
        args.seeds = min(args.seeds, 2)
        args.threads_trials, args.threads_epochs = 2, 1
        storage_growth.quick(args)
        storage_scaling.quick(args)
    if args.max_epochs is None:
        args.max_epochs = RECIPES[args.efficiency_experiment].max_epochs
    minimum = 5 * 2 * args.max_epochs + args.max_epochs  # select's default re-trainings and one search trial
    if args.budget_epochs < minimum:
        parser.error(f"--budget-epochs must be >= {minimum} (select's 5 x 2 re-trainings of {args.max_epochs} "
                     f"epochs and one search trial), got {args.budget_epochs}")
    if args.seeds < 1 or args.parallel < 1:
        parser.error(f"--seeds and --parallel must be >= 1, got {args.seeds} and {args.parallel}")
    return args


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _select_off() -> list[str]:
    """``select=off`` where this checkout has seed-robust selection: sections 1 and 3 time the search
    loop against loops that re-train nothing (section 4 measures what selection costs and buys)."""
    return ["select=off"] if (ROOT / "conf" / "select" / "off.yaml").exists() else []


def overhead(args: argparse.Namespace, folder: Path) -> list[str]:
    """Item 1: the driver's wall time outside trial training, against a bare Optuna loop."""
    jobs = []
    for repeat in range(args.repeats):
        run_dir = folder / f"r{repeat}"
        run_dir.mkdir()
        storage = f"sqlite:///{run_dir}/ours.db"
        overrides = ["+experiment=digits_cnn", *cnn_epochs(args.overhead_epochs),
                     f"sweep.n_trials={args.overhead_trials}", "sweep.pruner=none", "trainer.num_threads=1",
                     f"sweep.seed={repeat}", f"sweep.storage={storage}", f"sweep.export_dir={run_dir}/exports",
                     *_select_off()]
        jobs.append({"kind": "sweep", "overrides": overrides, "folder": str(run_dir)})
        for name, wal in (("bare", False), ("bare-wal", True)):
            jobs.append({"kind": "bare", "storage": f"sqlite:///{run_dir}/{name}.db", "n_trials": args.overhead_trials,
                         "max_epochs": args.overhead_epochs, "seed": repeat, "wal": wal})
    results = run_jobs(jobs, folder)
    ours = [e["result"] for e in results["jobs"] if e["job"]["kind"] == "sweep"]
    bare = [e["result"] for e in results["jobs"] if e["job"]["kind"] == "bare" and not e["job"]["wal"]]
    bare_wal = [e["result"] for e in results["jobs"] if e["job"]["kind"] == "bare" and e["job"]["wal"]]
    per_trial = lambda r: 1000 * (r["loop_s"] - r["train_s"] - r.get("checks_s", 0.0)) / r["n_trials"]  # noqa: E731
    ours_ms, bare_ms = [per_trial(r) for r in ours], [per_trial(r) for r in bare]
    wal_ms = [per_trial(r) for r in bare_wal]
    beyond_ms = [o - b for o, b in zip(ours_ms, bare_ms)]
    fraction = [(r["main_s"] - r["train_s"] - r["vault_s"]) / r["main_s"] for r in ours]
    loop_fraction = [(r["loop_s"] - r["train_s"]) / r["loop_s"] for r in ours]
    bare_fraction = [(r["wall_s"] - r["train_s"]) / r["wall_s"] for r in bare]
    lines = [
        f"digits_cnn's search space, {args.overhead_trials} trials of {args.overhead_epochs} epochs, no pruning, "
        "no seed-robust selection (`select=off`), one torch thread, a fresh SQLite file per run; "
        "`python -m sweeps` (in-process, timed around `main`) and "
        "a bare `study.optimize` loop that suggests the same parameters by hand and calls the same "
        "`practices.train.fit`, "
        f"with the same TPE settings, on an SQLite file as Optuna makes one (rollback journal) and, in another "
        f"row, on one in write-ahead-log mode as sweeps makes one; {args.repeats} repeats, alternating. "
        "Training time is model build plus `fit` in "
        f"both. Interpreter start-up and imports, not in the sweep figures: {results['imports_s']:.1f} s.",
        "",
    ]
    rows = [
        ["sweeps: per-trial overhead (ms)", *spread(ours_ms, "{:.1f}")],
        ["bare Optuna loop: per-trial overhead (ms)", *spread(bare_ms, "{:.1f}")],
        ["sweeps beyond bare, per trial (ms; target <= 40 median)", *spread(beyond_ms, "{:.1f}")],
        ["bare loop on an SQLite file in WAL mode, as sweeps makes a new one: per-trial overhead (ms)",
         *spread(wal_ms, "{:.1f}")],
        ["sweeps beyond that bare loop, per trial (ms)", *spread([o - w for o, w in zip(ours_ms, wal_ms)], "{:.1f}")],
        ["ratio sweeps / bare (per repeat)", *spread([o / b for o, b in zip(ours_ms, bare_ms)])],
        ["sweeps: whole run outside trial training (fraction of wall)", *spread(fraction, "{:.3f}")],
        ["sweeps: trial loop outside trial training (fraction)", *spread(loop_fraction, "{:.3f}")],
        ["bare loop: outside trial training (fraction of wall)", *spread(bare_fraction, "{:.3f}")],
        ["sweeps: storage writes per trial (whole run / trials)", *_calls(ours, "writes")],
        ["bare loop: storage writes per trial", *_calls(bare, "writes")],
        ["sweeps: storage reads per trial", *_calls(ours, "reads")],
        ["bare loop: storage reads per trial", *_calls(bare, "reads")],
        ["sweeps: wall of the run (s)", *spread([r["main_s"] for r in ours], "{:.1f}")],
        ["sweeps: of which vault opening, one retrain (s)", *spread([r["vault_s"] for r in ours], "{:.1f}")],
        ["bare loop: wall (s)", *spread([r["wall_s"] for r in bare], "{:.1f}")],
    ]
    lines += table(["figure", "min", "median", "max"], rows)
    lines += ["", "Per-trial overhead: (trial loop wall - time in training - time in preflight checks) / trials; "
              "the last trials' plots are drawn while the vault opens and the study is exported, and the sweep "
              "waits for them at its end (in the run's wall, not in the trial loop). The run's wall covers "
              "composition, validation (every searched option built once), study creation, the trials, the vault "
              "opening and the export; the vault's retrain is useful training outside the trials, so it is taken "
              "out of the whole-run fraction."]
    return lines


def _calls(results: list[dict], kind: str) -> list[str]:
    """Storage calls per trial of each run (counted on the RDB storage's public methods)."""
    return spread([r["storage_calls"][kind] / r["n_trials"] for r in results if "storage_calls" in r], "{:.1f}")


def throughput(args: argparse.Namespace, folder: Path) -> list[str]:
    """Item 2: samples per second of the practices loop (and a sweeps trial) against a hand loop."""
    job = {"kind": "throughput", "epochs": args.throughput_epochs, "repeats": args.repeats, "folder": str(folder)}
    measured = run_jobs([job], folder)["jobs"][0]["result"]
    rates = measured["samples_per_s"]
    hand = rates["hand-written loop"]
    rows = []
    for name, values in rates.items():
        ratios = [v / h for v, h in zip(values, hand)]
        rows.append([name, *spread(values, "{:.0f}"), *spread(ratios)])
    lines = [
        f"The CNN of conf/model/cnn.yaml (kernel 3, hidden 64), SGD with momentum, batch 32, {args.throughput_epochs} "
        f"epochs over digits' training split (validated after every epoch in every variant), one torch thread; "
        f"{args.repeats} repeats, variants interleaved, order rotated. `sweeps trial` is one whole trial through the "
        "driver's `Objective` (config copy, user attributes, report and prune callback; in-memory storage), so "
        "its per-trial costs weigh more the fewer the epochs; its plots are drawn by the renderer process after "
        "the timed trial, as in a sweep, where they overlap the next trial. Each variant runs once untimed first; "
        "the sweeps trial then finds the preflight results in the study's cache, as a sweep's later trials of one "
        "architecture do (section 3 has what the checks cost). Target (issue 13): the sweeps trial "
        "with `monitor=default` at >= 0.95x the hand-written loop.",
        "",
    ]
    lines += table(["loop", "samples/s min", "median", "max", "ratio to hand loop: min", "median", "max"], rows)
    if not measured["monitor"]:
        lines += ["", f"Monitor on/off: {NOT_AVAILABLE.lower()} (no conf/monitor/); the sweeps trial ran without one."]
    return lines + _external("bench_monitor.py", args, folder)


def _preflight_options() -> list[str]:
    folder = ROOT / "conf" / "preflight"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def preflight(args: argparse.Namespace, folder: Path) -> list[str]:
    """Item 3: per-trial wall time with each preflight option against ``preflight=off``."""
    options = _preflight_options()
    lines: list[str] = []
    if "off" in options and len(options) > 1:
        lines += _preflight_sweeps(args, folder, options)
    else:
        lines += [f"Sweeps with and without preflight: {NOT_AVAILABLE.lower()} "
                  "(no conf/preflight/ with an `off` option)."]
    return lines + _external("bench_preflight.py", args, folder)


def _preflight_sweeps(args: argparse.Namespace, folder: Path, options: list[str]) -> list[str]:
    jobs = []
    for repeat in range(args.repeats):
        for option in options:
            run_dir = folder / f"{option}-{repeat}"
            run_dir.mkdir()
            overrides = ["+experiment=digits_cnn", f"preflight={option}", *cnn_epochs(args.overhead_epochs),
                         f"sweep.n_trials={args.preflight_trials}", "sweep.pruner=none", "trainer.num_threads=1",
                         f"sweep.storage=sqlite:///{run_dir}/s.db", f"sweep.export_dir={run_dir}/exports",
                         "vault.auto_open=false", *_select_off()]
            jobs.append({"kind": "sweep", "option": option, "overrides": overrides, "folder": str(run_dir)})
    results = run_jobs(jobs, folder)["jobs"]
    per_trial: dict[str, list[float]] = {o: [] for o in options}
    for entry in results:
        per_trial[entry["job"]["option"]].append(entry["result"]["main_s"] / args.preflight_trials)
    rows = []
    for option in options:
        share = [(t - off) / t for t, off in zip(per_trial[option], per_trial["off"])]
        rows.append([option, *spread(per_trial[option]), *spread(share, "{:.3f}")])
    lines = [f"digits_cnn, {args.preflight_trials} trials of {args.overhead_epochs} epochs per run (`select=off`), "
             "each `preflight` "
             f"option of conf/preflight/, {args.repeats} repeats interleaved. Preflight share: (run wall per trial - "
             "the same with preflight=off) / run wall per trial.", ""]
    header = ["preflight", "wall per trial (s): min", "median", "max", "preflight share: min", "median", "max"]
    return lines + table(header, rows)


def _external(script: str, args: argparse.Namespace, folder: Path) -> list[str]:
    """Runs another issue's benchmark script where this checkout has it, and quotes its output."""
    path = ROOT / "scripts" / script
    if not path.exists():
        return ["", f"`scripts/{script}`: {NOT_AVAILABLE.lower()}."]
    if args.quick:
        return ["", f"`scripts/{script}`: not run with --quick."]
    from benchmarks._tables import env

    helptext = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, env=env()).stdout
    out = folder / f"{path.stem}.md"
    command = [sys.executable, str(path)] + (["--out", str(out)] if "--out" in helptext else [])
    done = subprocess.run(command, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=1800)
    if done.returncode != 0:
        return ["", f"`scripts/{script}` failed (exit {done.returncode}): {done.stderr.strip()[-500:]}"]
    text = out.read_text() if out.exists() else done.stdout
    quoted = [("#" + line) if line.startswith("#") else line for line in text.strip().splitlines()]
    return ["", f"From `python scripts/{script}` (run by this harness, same load):", "", *quoted]


def sample_efficiency(args: argparse.Namespace, folder: Path) -> list[str]:
    """Item 4: five search methods side by side: best validation accuracy against cumulative epochs,
    epochs to hydra-optuna-sweeper's best, and the sealed test accuracy of what each would ship."""
    python, versions = None, ""
    if "hos" not in args.skip:
        _say("hydra-optuna-sweeper environment: " + str(args.hos_venv))
        python = efficiency.ensure_hos_venv(args.hos_venv)
        versions = efficiency.hos_versions(python)
    started = time.perf_counter()
    measured = efficiency.measure(args, folder, python)
    wall_s = time.perf_counter() - started
    png = args.out.with_name(args.out.stem + "_efficiency.png")
    experiment, budget, max_epochs = args.efficiency_experiment, args.budget_epochs, args.max_epochs
    efficiency.plot(measured, png, f"{experiment}: best validation accuracy within {budget} epochs")
    skip = ",".join(s for s in SECTIONS if s not in ("efficiency", "hos"))
    command = (f"PYTHONPATH=$PWD python -m benchmarks --skip {skip} --efficiency-experiment {experiment} "
               f"--seeds {args.seeds} --budget-epochs {budget} --max-epochs {max_epochs} --parallel {args.parallel}")
    if set(args.efficiency_methods) != set(efficiency.METHOD_NAMES):
        command += f" --efficiency-methods {','.join(args.efficiency_methods)}"
    command += "".join(f" --efficiency-variant {shlex.quote(' '.join(v))}" for v in args.efficiency_variants)
    n_jobs = sum(len(row["curves"]) for row in measured.values())
    lines = [
        f"`{experiment}`'s search space (`python -m sweeps +experiment={experiment}`), {max_epochs} epochs per full "
        f"trial, a budget of {budget} training epochs per method and seed, seeds 0-{args.seeds - 1}; every method on "
        f"every seed is one job, {args.parallel} jobs at a time (one torch thread each), the methods interleaved. "
        "This section alone:",
        "",
        "```bash",
        command,
        "```",
        "",
        "The methods, each over the same seeds:",
        "",
        f"- `{efficiency.OURS}`: `python -m sweeps +experiment={experiment}` as it comes (TPE, median pruning, "
        "the monitor, preflight checks, seed-robust selection with `select.top_k=5`, `select.n_seeds=2`); the "
        "test vault opens at the end (`vault.auto_open=true`);",
        f"- `{efficiency.OURS_OFF}`: the same with `select=off`: the best single trial ships;",
        f"- `{efficiency.RANDOM}`: the same command with `sweep.sampler=random sweep.pruner=none monitor=off "
        "preflight=off select=off`;",
        f"- `{efficiency.PLAIN}`: `benchmarks/plain_optuna.py`, a hand-written `optuna.create_study` loop with "
        "`TPESampler(seed=seed)` at its defaults, the search space suggested define-by-run, no pruning;",
        f"- `{efficiency.HOS}`: Hydra multirun through `benchmarks/hos/app.py` (its search space is flat: the "
        "sweeper has no conditional parameters), in its own virtual environment;",
        *[f"- `{efficiency.variant_name(v)}`: `{efficiency.OURS}` with `{' '.join(v)}` appended;"
          for v in args.efficiency_variants],
        "",
        f"Methods in this run: {', '.join(f'`{m}`' for m in efficiency.methods_of(args, python))}.",
        "",
        "The baselines train through `benchmarks/recipes.py`: the same samples and train/validation split, model, "
        "optimizer, batch size, schedules, weight averaging and `practices.train.fit` as a sweeps trial (the "
        "sweeper's trials read the very samples from a file the harness writes). Every epoch's validation accuracy "
        "is recorded. A method gets no further trial once another full trial could pass the budget, so none trains "
        f"more than {budget} epochs in its search; with select on, the re-trainings of seed-robust selection (at most "
        f"5 x 2 x {max_epochs} = {10 * max_epochs} epochs) come out of the same budget, so the search itself gets "
        f"{budget - 10 * max_epochs} epochs: the re-trainings cost epochs on the plot's x-axis and their values do not "
        "count as found configurations. A pruned or diverged trial costs the epochs it ran. The x-axis "
        "is epochs, not seconds, so the accuracy figures do not depend on the machine's load; the CPU and wall "
        "figures do.",
        "",
        "What ships, and its sealed test accuracy (the test split that the search never sees, evaluated once per "
        "method and seed): sweeps' own test vault (`test_result.json`; `vault.final_model=retrain`: the shipped "
        "trial's configuration trained again with its seed for its best epoch count), for the seed-robust winner "
        "with select on and the best trial otherwise, random search included. The plain Optuna script and "
        "hydra-optuna-sweeper ship their best trial (`study.best_trial`; the sweeper's best value) by one rule for "
        "both: its configuration trained again with its seed up to its best epoch, the schedule and weight "
        "averaging as in the trial (`recipes.test_accuracy`), then evaluated once on the same sealed test split. "
        "The one final training is outside the budget for every method.",
        "",
    ]
    if python is None:
        lines += ["hydra-optuna-sweeper: skipped in this run (--skip hos).", ""]
    else:
        lines += [f"hydra-optuna-sweeper environment: {versions}.", ""]
    lines += efficiency.report(measured, args, png.name)
    lines += ["", f"{n_jobs} jobs in {wall_s / 60:.1f} minutes of wall time."]
    return lines


def workers(args: argparse.Namespace, folder: Path) -> list[str]:
    """Item 5: trials per hour with 1 and 2 workers, from scripts/bench_workers.py."""
    from benchmarks._tables import env

    out = folder / "workers.md"
    command = [sys.executable, str(ROOT / "scripts" / "bench_workers.py"), "--trials", str(args.workers_trials),
               "--repeats", str(args.repeats), "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, env=env(), cwd=ROOT)
    lines = out.read_text().strip().splitlines()[2:]  # without its title and the blank line after it
    return lines + ["", "Target (issue 13): 2 workers >= 1.8x the trials per hour of 1 worker on 2 idle cores. What "
                    "stays below 2x in the whole command: the parent's imports, composition, validation and export, "
                    "and the fork server's imports, run once either way; each worker forks from that server and "
                    "loads its config and data before its first trial. What stays below 2x in the trial loop: with "
                    "1 worker, its renderer process draws "
                    "the plots on the otherwise idle second core; with 2, both renderers share the 2 cores with "
                    "the training (compare plots off), and the last trial leaves a core idle when the trial count "
                    "does not split evenly."]


SECTION_FUNCTIONS: list[tuple[str, str, Callable[[argparse.Namespace, Path], list[str]]]] = [
    ("overhead", "1. Driver overhead", overhead),
    ("throughput", "2. Trainer throughput", throughput),
    ("preflight", "3. Preflight cost", preflight),
    ("efficiency", "4. Sample efficiency at a fixed budget of epochs", sample_efficiency),
    ("workers", "5. Parallel scaling: trials per hour, 1 vs 2 workers", workers),
    ("threads", "6. Thread defaults, idle and beside busy processes", perf.threads),
    ("growth", "7. Storage: cost per trial as the study grows", storage_growth.section),
    ("scaling", "8. Storage: trials per second with 1, 4 and 8 workers", storage_scaling.section),
]


def _header(args: argparse.Namespace, argv: list[str]) -> list[str]:
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("torch", "optuna", "hydra-core", "pandas"))
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    commit = git.stdout.strip()
    return [
        "# Benchmarks",
        "",
        "Written by one command, from the repository root:",
        "",
        "```bash",
        "PYTHONPATH=$PWD python -m benchmarks" + ("" if not argv else " " + " ".join(argv)),
        "```",
        "",
        "(`--help` lists the budgets; `--only overhead,threads` runs some sections alone, `--skip hos` leaves out "
        "hydra-optuna-sweeper, whose own virtual environment "
        "under `.bench/venv-hos` is made on first use, a few minutes.) Every figure is measured side by side "
        "in this one run, the compared variants interleaved, with min, median and max over repeats or seeds: "
        "the machines are noisy, so compare figures within one run only.",
        "",
        f"Run at {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, {versions}, commit {commit}."
        + (" **--quick: tiny budgets, the figures mean nothing.**" if args.quick else ""),
        "",
    ]


KEPT = "_Not rerun in this run"
SUMMARY_BEGIN, SUMMARY_END = "<!-- summary: written by hand, kept by every run -->", "<!-- /summary -->"


def _earlier_summary(path: Path) -> list[str]:
    """The hand-written summary of the file as it is (between :data:`SUMMARY_BEGIN` and
    :data:`SUMMARY_END`, markers included), or nothing: a run rewrites the figures, not what a person
    wrote about them."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    if SUMMARY_BEGIN not in lines or SUMMARY_END not in lines:
        return []
    begin, end = lines.index(SUMMARY_BEGIN), lines.index(SUMMARY_END)
    return lines[begin : end + 1] + [""] if begin < end else []


def _earlier_sections(path: Path) -> dict[str, list[str]]:
    """Section title -> its body in the file as it is, headed by a line that says when it was
    measured: a skipped section keeps what it measured before (one that was itself skipped there
    has nothing to keep)."""
    if not path.exists():
        return {}
    sections: dict[str, list[str]] = {}
    body: list[str] | None = None
    measured = "an earlier run"
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            body = sections.setdefault(line[3:], [])
        elif body is not None:
            body.append(line)
        elif line.startswith("Run at "):
            commit = re.search(r"commit (\w+)", line)
            measured = ("the run of " + line[len("Run at "):].split(" on ")[0]
                        + (f", commit {commit[1]}" if commit else ""))
    kept = {}
    for title, lines in sections.items():
        text = "\n".join(lines).strip().splitlines()
        if not text or text[0].startswith("Skipped in this run"):
            continue
        if not text[0].startswith(KEPT):  # kept twice: the first note still says when it was measured
            text = [f"{KEPT}: kept from {measured} of this file._", "", *text]
        kept[title] = text
    return kept


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = _header(args, argv) + _earlier_summary(args.out)
    earlier = _earlier_sections(args.out)
    with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as tmp:
        for key, title, function in SECTION_FUNCTIONS:
            lines += [f"## {title}", ""]
            if key in args.skip:
                lines += earlier.get(title, [f"Skipped in this run (--skip {key})."]) + [""]
                continue
            folder = Path(tmp) / key
            folder.mkdir()
            before, started = load(), time.perf_counter()
            _say(f"benchmark {key} ...")
            lines += function(args, folder)
            seconds = time.perf_counter() - started
            lines += ["", f"_Section time {seconds:.0f} s; load average (1/5/15 min) {before} before, "
                      f"{load()} after._", ""]
            _say(f"benchmark {key}: {seconds:.0f} s")
    args.out.write_text("\n".join(lines).rstrip() + "\n")
    _say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
