"""CPU time the plot renderer spends drawing one trial's three plots, this checkout against a git revision.

Each version runs in fresh processes, alternating (``--runs`` each), and draws the same ``--jobs``
quickstart-sized trials (12 epochs, 4 layers' update ratios over 48 sampled steps, 16 filters 3x3),
as ``python -m sweeps.trial._plots`` draws a sweep's trials, one after another in one process. The
figure is each plot's median CPU time (``time.process_time``) over the jobs, the first job (imports)
left out; the summary line gives the median over runs of the three plots' sum, and the ratio.

    python scripts/bench_plots.py [--against bee701c] [--jobs 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter: argv[1] is the _plots.py to load.
_CHILD = r"""
import importlib.util, json, random, sys, tempfile, time
from pathlib import Path
import numpy as np
spec = importlib.util.spec_from_file_location("plots_under_test", sys.argv[1])
plots = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plots)
rng, n_jobs = random.Random(0), int(sys.argv[2])
np.random.seed(0)

def job():
    epochs, steps = list(range(1, 13)), list(range(0, 480, 10))
    return {
        "loss_curve.png": {"epochs": epochs, "train_loss": [rng.uniform(0.1, 2) / e for e in epochs],
                           "val_loss": [rng.uniform(0.1, 2) / e for e in epochs], "metric": "val_accuracy",
                           "metric_values": [rng.random() for _ in epochs], "lr": [0.05 * 0.8**e for e in epochs],
                           "best_epoch": rng.randint(1, 12)},
        "update_ratio.png": {"steps": steps, "ratios": {f"layer{i}": [10 ** rng.uniform(-4, -2) for _ in steps]
                                                        for i in range(4)}, "low": 1e-4, "high": 1e-2},
        "first_layer_filters.png": {"filters": np.random.randn(16, 3, 3).tolist()},
    }

folder, seconds = Path(tempfile.mkdtemp()), {}
for k in range(n_jobs + 1):
    for name, data in job().items():
        started = time.process_time()
        plots.draw(name, data, folder / name)
        if k:  # the first job imports matplotlib
            seconds.setdefault(name, []).append(time.process_time() - started)
print(json.dumps({name: sorted(v)[len(v) // 2] for name, v in seconds.items()}))
"""


def _run(module: Path, n_jobs: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(module), str(n_jobs)], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="bee701c", help="git revision to compare with")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "_plots.py"
        old.write_text(subprocess.run(["git", "show", f"{args.against}:sweeps/trial/_plots.py"], cwd=ROOT,
                                      check=True, capture_output=True, text=True).stdout)
        versions = {args.against: old, "this checkout": ROOT / "sweeps" / "trial" / "_plots.py"}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
        for _ in range(args.runs):
            for name, module in versions.items():
                results[name].append(_run(module, args.jobs))
    totals = {}
    for name, runs in results.items():
        per_plot = {plot: statistics.median(r[plot] for r in runs) * 1000 for plot in runs[0]}
        totals[name] = statistics.median(sum(r.values()) for r in runs) * 1000
        shown = ", ".join(f"{plot} {ms:.1f}" for plot, ms in per_plot.items())
        print(f"{name}: {shown}; three plots {totals[name]:.1f} ms CPU per trial")
    print(f"this checkout / {args.against}: {totals['this checkout'] / totals[args.against]:.2f}x "
          f"({args.jobs} jobs, {args.runs} runs each, alternating)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
