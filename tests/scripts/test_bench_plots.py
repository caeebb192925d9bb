"""scripts/bench_plots.py: the renderer's CPU per trial, this checkout against a git revision."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_plots_reports_each_plot_for_both_versions_and_their_ratio():
    # Against HEAD, there in any clone (a shallow one too): both versions draw all three plots.
    result = subprocess.run([sys.executable, "scripts/bench_plots.py", "--against", "HEAD", "--jobs", "2",
                             "--runs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    old, new, ratio = result.stdout.strip().splitlines()
    for line, name in ((old, "HEAD"), (new, "this checkout")):
        figures = dict(re.findall(r"(\w+\.png) ([\d.]+)", line))
        assert line.startswith(f"{name}: ") and sorted(figures) == ["first_layer_filters.png", "loss_curve.png",
                                                                      "update_ratio.png"]
        assert all(float(ms) > 0 for ms in figures.values())
    assert re.fullmatch(r"this checkout / HEAD: \d+\.\d\dx \(2 jobs, 1 runs each, alternating\)", ratio)
