"""Small helpers: min / median / max of repeats, Markdown tables, the child process that runs jobs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> list[str]:
    """``[min, median, max]`` of ``values``, formatted; dashes where there are none."""
    if not values:
        return ["-", "-", "-"]
    return [fmt.format(v) for v in (min(values), statistics.median(values), max(values))]


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def env() -> dict[str, str]:
    """The environment for a child process: this checkout first on PYTHONPATH."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")


def run_jobs(jobs: list[dict[str, Any]], folder: Path, parallel: int = 1) -> dict[str, Any]:
    """Runs ``jobs`` in ``parallel`` child processes (``benchmarks._jobs``), each taking every
    ``parallel``-th job in order; returns their results in the order of ``jobs``.

    Raises:
        RuntimeError: a child failed; its log is named.
    """
    lanes = [jobs[i::parallel] for i in range(max(1, min(parallel, len(jobs))))]
    running = []
    for i, lane in enumerate(lanes):
        suffix = "" if len(lanes) == 1 else f"-{i}"
        jobs_file, out_file, log = (folder / f"jobs{suffix}.json", folder / f"results{suffix}.json",
                                    folder / f"jobs{suffix}.log")
        jobs_file.write_text(json.dumps(lane))
        with open(log, "w") as out:
            child = subprocess.Popen([sys.executable, "-m", "benchmarks._jobs", str(jobs_file), str(out_file)],
                                     cwd=folder, env=env(), stdout=out, stderr=subprocess.STDOUT)
        running.append((child, out_file, log))
    codes = [child.wait() for child, _, _ in running]
    for code, (_, _, log) in zip(codes, running):
        if code != 0:
            raise RuntimeError(f"benchmark jobs failed (exit {code}); see {log}:\n{log.read_text()[-3000:]}")
    parts = [json.loads(out_file.read_text()) for _, out_file, _ in running]
    merged = [None] * len(jobs)
    for i, part in enumerate(parts):
        for j, entry in enumerate(part["jobs"]):
            merged[i + j * len(lanes)] = entry
    return {"imports_s": max(p["imports_s"] for p in parts), "jobs": merged}


def load() -> str:
    """The 1, 5 and 15 minute load averages, as text."""
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def cnn_epochs(n_epochs: int) -> list[str]:
    """Overrides for digits_cnn trials of ``n_epochs``: its cosine warmup (0 to 5 epochs) must stay
    shorter than the run, or the build check refuses the search space (a --quick budget trains 1-2)."""
    return [f"trainer.max_epochs={n_epochs}",
            f"search.schedule.options.cosine.warmup_epochs.high={min(5, n_epochs - 1)}"]
