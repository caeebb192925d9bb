"""Preflight cost as a share of trial wall time on digits_cnn, with and without the cache.

    PYTHONPATH=. python scripts/bench_preflight.py [--trials 20] [--repeats 3] [--out docs/preflight.md] [OVERRIDE ...]

Each repeat runs the same sweep (same seed, so the same sampled configs) twice, side by side: once
with ``preflight.cache=true`` and once with ``preflight.cache=false``, each into a fresh SQLite study
in a temporary folder. The preflight call of every trial is timed in-process; a trial's wall time
is its start-to-complete time in the storage. Reported per mode, as min / median / max over the
repeats: the sweep's total preflight time over its total trial time, the median trial's share, and
the share on trials that hit the cache. Writes the table into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

import sweeps.trial._objective as objective_module
from sweeps.__main__ import main as sweep_main

MODES = {"cache": "preflight.cache=true", "no cache": "preflight.cache=false"}


def _run(mode: str, repeat: int, n_trials: int, extra: list[str]) -> list[tuple[float, float, str]]:
    """(preflight seconds, trial seconds, cache outcome) of each trial of one sweep."""
    timings: dict[int, float] = {}
    real = objective_module.preflight

    def timed(trial, *args, **kwargs):
        started = time.perf_counter()
        try:
            return real(trial, *args, **kwargs)
        finally:
            timings[trial.number] = time.perf_counter() - started

    objective_module.preflight = timed
    folder = tempfile.mkdtemp(prefix="bench_preflight_")
    storage = f"sqlite:///{folder}/bench.db"
    overrides = ["+experiment=digits_cnn", f"sweep.n_trials={n_trials}", f"sweep.storage={storage}",
                 f"sweep.study_name=bench-{repeat}", f"sweep.export_dir={folder}/exports", MODES[mode], *extra]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            code = sweep_main(overrides)
    finally:
        objective_module.preflight = real
    if code != 0:
        raise SystemExit(f"the sweep {overrides} exited with {code}")
    trials = optuna.load_study(study_name=f"bench-{repeat}", storage=storage).get_trials()
    return [(timings[t.number], (t.datetime_complete - t.datetime_start).total_seconds(),
             (t.user_attrs.get("preflight") or {}).get("cache", "?")) for t in trials]


def _shares(rows: list[tuple[float, float, str]]) -> dict[str, float]:
    hits = [p / w for p, w, c in rows if c == "hit"]
    return {
        "sweep total": sum(p for p, _, _ in rows) / sum(w for _, w, _ in rows),
        "median trial": statistics.median(p / w for p, w, _ in rows),
        "cache-hit trials (median)": statistics.median(hits) if hits else float("nan"),
    }


def _fmt(values: list[float]) -> str:
    if all(v != v for v in values):
        return "n/a"
    values = [v for v in values if v == v]
    return f"{min(values):.1%} / {statistics.median(values):.1%} / {max(values):.1%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/preflight.md"))
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both modes")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # pays torch.optim's one-time import up front
    load = os.getloadavg()[0]
    results: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    rows_all: dict[str, list[tuple[float, float, str]]] = {m: [] for m in MODES}
    for repeat in range(args.repeats):
        for mode in MODES:  # side by side within each repeat
            rows = _run(mode, repeat, args.trials, args.overrides)
            rows_all[mode] += rows
            results[mode].append(_shares(rows))
            share = results[mode][-1]
            print(f"repeat {repeat} {mode:<8}: sweep total {share['sweep total']:.1%}, median trial "
                  f"{share['median trial']:.1%}, trial wall median {statistics.median(w for _, w, _ in rows):.2f}s, "
                  f"misses {sum(c == 'miss' for _, _, c in rows)}", flush=True)
    table = ["| preflight share of trial wall time (min / median / max over repeats) | with the cache | without |",
             "|---|---|---|"]
    for key in results["cache"][0]:
        table.append(f"| {key} | {_fmt([r[key] for r in results['cache']])} | "
                     f"{_fmt([r[key] for r in results['no cache']])} |")
    seconds = {m: statistics.median(p for p, _, _ in rows_all[m]) for m in MODES}
    miss = [p for p, _, c in rows_all["cache"] if c == "miss"]
    hit = [p for p, _, c in rows_all["cache"] if c == "hit"]
    wall = statistics.median(w for _, w, _ in rows_all["cache"])
    command = "PYTHONPATH=. python scripts/bench_preflight.py " + " ".join(
        [f"--trials {args.trials}", f"--repeats {args.repeats}", *args.overrides])
    text = "\n".join(table) + (
        f"\n\nPer trial (medians over all repeats): trial wall time {wall:.2f} s; "
        f"preflight {seconds['no cache'] * 1e3:.0f} ms without the cache; "
        f"with it {statistics.median(hit) * 1e3 if hit else float('nan'):.0f} ms on a cache hit and "
        f"{statistics.median(miss) * 1e3 if miss else float('nan'):.0f} ms on a miss "
        f"({len(miss)} misses in {len(rows_all['cache'])} trials).\n\n"
        f"Measured with `{command}` on {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, {args.repeats} repeats of {args.trials} trials per mode (load average "
        f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end).\n")
    print(text)
    _write(args.out, text)
    return 0


def _write(path: Path, text: str) -> None:
    """Replaces the measured block between the markers of ``path`` (or appends one)."""
    begin, end = "<!-- bench_preflight: begin -->", "<!-- bench_preflight: end -->"
    block = f"{begin}\n{text}{end}"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old + ("\n" if old else "") + block + "\n"
    path.write_text(new)


if __name__ == "__main__":
    sys.exit(main())
