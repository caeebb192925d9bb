"""Smoke test of the storage sections of ``python -m benchmarks`` (growth, scaling) on --quick
budgets: they run and write their tables with numbers; nothing is asserted about speed."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL
from tests.helpers import subprocess_env

ROOT = Path(__file__).resolve().parent.parent.parent


def _rows(text, title):
    """The body rows of the Markdown table under the section ``title``, as cells."""
    body = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in body.splitlines() if line.startswith("| ")]
    return rows[1:]  # without the header


@pytest.mark.slow
def test_storage_sections_write_tables_of_numbers(tmp_path, postgres_url):  # postgres_url: skip without a server
    out = tmp_path / "benchmarks.md"
    command = [sys.executable, "-m", "benchmarks", "--quick", "--only", "growth,scaling",
               "--postgres-url", POSTGRES_URL, "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=1200,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    growth = _rows(text, "7. Storage: cost per trial as the study grows")
    assert [(r[0], r[1]) for r in growth] == [(k, n) for k in ("sqlite", "journal", "postgresql") for n in ("10", "40")]
    for row in growth:
        low, median, high = (float(c) for c in row[2:5])
        assert 0 < low <= median <= high
    scaling = _rows(text, "8. Storage: trials per second with 1, 4 and 8 workers")
    labels = ("journal file", "PostgreSQL", "gRPC proxy -> PostgreSQL")
    assert [(r[0], r[1]) for r in scaling] == [(k, n) for k in labels for n in ("1", "2")]
    for row in scaling:
        assert float(row[2]) > 0
        assert row[5:] == ["1.00"] * 3 or row[1] != "1"
