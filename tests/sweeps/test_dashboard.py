"""optuna-dashboard in a real browser (Debian's chromium, headless) on a finished quickstart study.

Runs the dashboard command the sweep printed, opens a trial's page and the study's page, and checks
that the note, the intermediate values and the artifacts show. On failure it saves screenshots to
``test-screenshots/`` (or ``$SWEEPS_SCREENSHOTS``). Skipped only outside CI when chromium is missing;
in CI (``CI=true``) it always runs: ``.ci/run`` installs chromium.
"""

import contextlib
import io
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from sweeps.__main__ import main
from sweeps.storage import study_id

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SWEEPS_SCREENSHOTS", ROOT / "test-screenshots"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,2400",
         "--virtual-time-budget=20000"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None and not IN_CI, reason="chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboard")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["+experiment=quickstart", "sweep.n_trials=1", "trainer.max_epochs=3", "trainer.num_threads=1"])
    finally:
        os.chdir(cwd)
    assert code == 0
    command = re.search(r"^inspect: (optuna-dashboard .*)$", out.getvalue(), re.MULTILINE).group(1)
    return folder, command, optuna.load_study(study_name="quickstart", storage=f"sqlite:///{folder}/sweeps.db")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


@pytest.fixture(scope="module")
def dashboard(finished_study):
    folder, command, study = finished_study
    argv = shlex.split(command)
    assert argv[0] == "optuna-dashboard" and "--artifact-dir" in argv
    executable = shutil.which("optuna-dashboard")
    assert executable, "optuna-dashboard is installed with sweeps"
    port = _free_port()
    server = subprocess.Popen([executable, *argv[1:], "--host", "127.0.0.1", "--port", str(port)], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"{base}/api/studies")[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        yield base, study
    finally:
        server.terminate()
        server.wait(timeout=20)


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=120)


def _dom(url: str, profile: Path) -> str:
    page = _chromium(url, profile, "--dump-dom")
    assert page.returncode == 0, page.stderr[-2000:]
    return page.stdout


def _fail_with_screenshots(problems: list[str], urls: dict[str, str], profile: Path) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = []
    for name, url in urls.items():
        path = SCREENSHOTS / f"dashboard-{name}.png"
        _chromium(url, profile, f"--screenshot={path}")
        shots.append(str(path))
    pytest.fail("; ".join(problems) + f" (screenshots: {', '.join(shots)})")


def test_dashboard_shows_note_intermediate_values_and_artifacts_in_chromium(dashboard, tmp_path):
    assert CHROMIUM, "CI=true: chromium must be installed (.ci/run installs it with apt-get)"
    base, study = dashboard
    trial = study.best_trial
    urls = {
        "trial": f"{base}/dashboard/studies/{study_id(study)}/trials?numbers={trial.number}",
        "study": f"{base}/dashboard/studies/{study_id(study)}",
    }
    profile = tmp_path / "chromium-profile"
    trial_page, study_page = _dom(urls["trial"], profile), _dom(urls["study"], profile)
    problems = []
    if f"Training report, trial {trial.number}" not in trial_page:
        problems.append("the trial's note is not on its page")
    if "### Diagnoses" in trial_page or "Diagnoses" not in trial_page:
        problems.append("the note is not rendered as markdown")
    if "Intermediate Values" not in trial_page or f"1 {trial.intermediate_values[1]!r}" not in trial_page:
        problems.append("the trial's intermediate values are not on its page")
    for name in ("loss_curve.png", "update_ratio.png", "first_layer_filters.png", "best_checkpoint.pt",
                 "last_checkpoint.pt"):
        if name not in trial_page:
            problems.append(f"artifact {name} is not on the trial's page")
    images = re.findall(r'<img[^>]*src="(/artifacts/[^"]+)"', trial_page)
    if len(set(images)) < 3:
        problems.append(f"the note shows {len(set(images))} plots, expected 3")
    for src in set(images):
        status, body = _get(base + src)
        if status != 200 or not body.startswith(b"\x89PNG"):
            problems.append(f"{src} does not serve a PNG")
    plot = study_page.partition('id="graph-intermediate-values"')[2][:200_000]
    if "main-svg" not in plot or "trace scatter" not in plot:
        problems.append("the study page does not draw the intermediate-values plot")
    if problems:
        _fail_with_screenshots(problems, urls, profile)
