"""Benchmarks against peers; writes docs/benchmarks.md and its PNG plots.

    PYTHONPATH=$PWD python -m benchmarks              # everything (about 10-15 minutes on 2 idle cores)
    PYTHONPATH=$PWD python -m benchmarks --quick --skip hos,workers,threads   # the smoke test's budget
    PYTHONPATH=$PWD python -m benchmarks --only threads --out /tmp/threads.md   # one section alone

Every figure compares variants measured side by side in one run, interleaved, and prints the min,
median and max over repeats (or seeds): these machines are noisy, so compare within one run only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from benchmarks import efficiency, perf, storage_growth, storage_scaling
from benchmarks._tables import ROOT, cnn_epochs, load, run_jobs, spread, table

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
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the sample-efficiency comparison")
    parser.add_argument("--budget-epochs", type=int, default=300, help="training epochs per method and seed")
    parser.add_argument("--max-epochs", type=int, default=25, help="epochs of a full trial (digits_cnn: 25)")
    parser.add_argument("--target", type=float, default=0.98, help="validation accuracy to reach")
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
    if args.quick:
        args.repeats, args.overhead_trials, args.overhead_epochs, args.throughput_epochs = 1, 3, 1, 1
        args.preflight_trials, args.budget_epochs, args.max_epochs, args.workers_trials = 2, 6, 2, 2
        args.threads_trials, args.threads_epochs = 2, 1
        storage_growth.quick(args)
        storage_scaling.quick(args)
    return args


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def overhead(args: argparse.Namespace, folder: Path) -> list[str]:
    """Item 1: the driver's wall time outside trial training, against a bare Optuna loop."""
    jobs = []
    for repeat in range(args.repeats):
        run_dir = folder / f"r{repeat}"
        run_dir.mkdir()
        storage = f"sqlite:///{run_dir}/ours.db"
        overrides = ["+experiment=digits_cnn", *cnn_epochs(args.overhead_epochs),
                     f"sweep.n_trials={args.overhead_trials}", "sweep.pruner=none", "trainer.num_threads=1",
                     f"sweep.seed={repeat}", f"sweep.storage={storage}", f"sweep.export_dir={run_dir}/exports"]
        jobs.append({"kind": "sweep", "overrides": overrides, "folder": str(run_dir)})
        jobs.append({"kind": "bare", "storage": f"sqlite:///{run_dir}/bare.db", "n_trials": args.overhead_trials,
                     "max_epochs": args.overhead_epochs, "seed": repeat})
    results = run_jobs(jobs, folder)
    ours = [e["result"] for e in results["jobs"] if e["job"]["kind"] == "sweep"]
    bare = [e["result"] for e in results["jobs"] if e["job"]["kind"] == "bare"]
    per_trial = lambda r: 1000 * (r["loop_s"] - r["train_s"] - r.get("checks_s", 0.0)) / r["n_trials"]  # noqa: E731
    ours_ms, bare_ms = [per_trial(r) for r in ours], [per_trial(r) for r in bare]
    beyond_ms = [o - b for o, b in zip(ours_ms, bare_ms)]
    fraction = [(r["main_s"] - r["train_s"] - r["vault_s"]) / r["main_s"] for r in ours]
    loop_fraction = [(r["loop_s"] - r["train_s"]) / r["loop_s"] for r in ours]
    bare_fraction = [(r["wall_s"] - r["train_s"]) / r["wall_s"] for r in bare]
    lines = [
        f"digits_cnn's search space, {args.overhead_trials} trials of {args.overhead_epochs} epochs, no pruning, "
        "one torch thread, a fresh SQLite file per run; `python -m sweeps` (in-process, timed around `main`) and "
        "a bare `study.optimize` loop that suggests the same parameters by hand and calls the same "
        "`practices.train.fit`, "
        f"with the same TPE settings; {args.repeats} repeats, alternating. Training time is model build plus `fit` in "
        f"both. Interpreter start-up and imports, not in the sweep figures: {results['imports_s']:.1f} s.",
        "",
    ]
    rows = [
        ["sweeps: per-trial overhead (ms)", *spread(ours_ms, "{:.1f}")],
        ["bare Optuna loop: per-trial overhead (ms)", *spread(bare_ms, "{:.1f}")],
        ["sweeps beyond bare, per trial (ms; target <= 40 median)", *spread(beyond_ms, "{:.1f}")],
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
              "the trial loop includes the wait for the plot renderer at its end. The run's wall covers "
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
                         "vault.auto_open=false"]
            jobs.append({"kind": "sweep", "option": option, "overrides": overrides, "folder": str(run_dir)})
    results = run_jobs(jobs, folder)["jobs"]
    per_trial: dict[str, list[float]] = {o: [] for o in options}
    for entry in results:
        per_trial[entry["job"]["option"]].append(entry["result"]["main_s"] / args.preflight_trials)
    rows = []
    for option in options:
        share = [(t - off) / t for t, off in zip(per_trial[option], per_trial["off"])]
        rows.append([option, *spread(per_trial[option]), *spread(share, "{:.3f}")])
    lines = [f"digits_cnn, {args.preflight_trials} trials of {args.overhead_epochs} epochs per run, each `preflight` "
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
    """Item 4: best validation accuracy against cumulative epochs, three methods, several seeds."""
    python, versions = None, ""
    if "hos" not in args.skip:
        _say("hydra-optuna-sweeper environment: " + str(args.hos_venv))
        python = efficiency.ensure_hos_venv(args.hos_venv)
        versions = efficiency.hos_versions(python)
    measured = efficiency.measure(args, folder, python)
    png = args.out.with_name(args.out.stem + "_efficiency.png")
    efficiency.plot(measured["curves"], args.target, png)
    lines = [
        f"digits_cnn's search space, {args.max_epochs} epochs per full trial, a budget of {args.budget_epochs} "
        f"training epochs per method and seed, seeds 0-{args.seeds - 1}, one torch thread. Ours and random search run "
        "through `python -m sweeps` (interleaved per seed), hydra-optuna-sweeper through Hydra multirun "
        f"(`benchmarks/hos/app.py`; the same data split, model, optimizer, schedules and `practices.train.fit`; "
        "its search space is flat, since the sweeper has no conditional parameters). Every epoch's validation "
        "accuracy is recorded, so each run is cut at exactly the budget; a pruned or diverged trial costs the epochs "
        "it ran. The budget counts training epochs only: what preflight checks cost in wall time is in section 3. "
        "The x-axis is epochs, not seconds, so these figures do not depend on the machine's load. Seeds are paired: "
        "with the same `sweep.seed`, ours and random search draw the same first trials (TPE starts from random "
        "samples), and part ways once the median pruner starts (after 5 trials) and TPE takes over (after 8).",
        "",
    ]
    if python is None:
        lines += ["hydra-optuna-sweeper: skipped in this run (--skip hos).", ""]
    else:
        lines += [f"hydra-optuna-sweeper environment: {versions}.", ""]
    return lines + efficiency.report(measured, args, png.name)


def workers(args: argparse.Namespace, folder: Path) -> list[str]:
    """Item 5: trials per hour with 1 and 2 workers, from scripts/bench_workers.py."""
    from benchmarks._tables import env

    out = folder / "workers.md"
    command = [sys.executable, str(ROOT / "scripts" / "bench_workers.py"), "--trials", str(args.workers_trials),
               "--repeats", str(args.repeats), "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, env=env(), cwd=ROOT)
    lines = out.read_text().strip().splitlines()[2:]  # without its title and the blank line after it
    return lines + ["", "Target (issue 13): 2 workers >= 1.8x the trials per hour of 1 worker on 2 idle cores. What "
                    "stays below 2x: the parent's composition, validation and export run once either way, each "
                    "worker process pays its own start-up (imports, config, data), and the last trials leave a "
                    "core idle when the trial count does not split evenly."]


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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = _header(args, argv)
    with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as tmp:
        for key, title, function in SECTION_FUNCTIONS:
            lines += [f"## {title}", ""]
            if key in args.skip:
                lines += [f"Skipped in this run (--skip {key}).", ""]
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
