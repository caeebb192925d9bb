"""A storage password never appears in what sweeps prints, writes or stores.

The local PostgreSQL server trusts its clients, so a URL with a password connects as well as one
without: each test runs real commands with ``postgres:s3cretPW@...`` and looks for the password in
every output stream, every file under the working folder, and every row of every table in the database.
"""

import json
import subprocess
import sys

import optuna
import pytest
import sqlalchemy
from sqlalchemy.engine import make_url

import sweeps.vault.__main__ as vault_cli
from sweeps import export as export_cli
from sweeps import train as train_cli
from sweeps.__main__ import main
from sweeps.storage._url import mask, mask_text
from sweeps.study import _records
from tests.helpers import subprocess_env

pytestmark = pytest.mark.slow
PASSWORD = "s3cretPW"
TINY = ["model=mlp", "model.width=16", "model.depth=1", "trainer.max_epochs=1", "trainer.num_threads=1",
        "sweep.n_trials=2", "sweep.sampler=random", "sweep.pruner=none",
        "+search.optimizer.lr={type:float,low:0.01,high:0.1}"]
STAGED = ["+experiment=digits_staged", "trainer.max_epochs=1", "stages.0.n_trials=2", "stages.1.n_trials=1",
          "sweep.pruner=none", "trainer.num_threads=1", "stages.0.search.schedule.options.cosine.warmup_epochs.high=0"]


@pytest.fixture
def secret_url(postgres_url):
    return make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)


def _files(folder):
    """Every file under ``folder`` with its bytes (exports, artifacts: plots, checkpoints, notes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _database_rows(url):
    """Every row of every table of the database, as text: attributes, notes, trial values, studies."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = sqlalchemy.inspect(conn).get_table_names()
            rows = {t: [str(tuple(r)) for r in conn.execute(sqlalchemy.text(f'SELECT * FROM "{t}"'))] for t in tables}
    finally:
        engine.dispose()
    return rows


def _assert_no_password(where, text):
    assert PASSWORD not in text, f"the storage password appears in {where}"


def test_mask_hides_the_password_in_urls_and_free_text():
    url = "postgresql://postgres:s3cretPW@127.0.0.1:5432/db"
    assert mask(url) == "postgresql://postgres:***@127.0.0.1:5432/db"
    text = f"cannot compose the config from ['sweep.storage={url}', 'x=1']: Could not override 'sweep.storag={url}'"
    assert PASSWORD not in mask_text(text) and mask_text(text).count("postgres:***@") == 2
    assert mask_text("sqlite:///sweeps.db and a plain: colon@sign") == "sqlite:///sweeps.db and a plain: colon@sign"


def test_password_never_printed_written_or_stored(secret_url, in_tmp, capfd):
    storage = f"sweep.storage={secret_url}"
    assert main([*TINY, storage]) == 0
    assert main([*TINY, storage]) == 0  # resumed: nothing to run, same messages
    assert main([*TINY, storage, "--cfg"]) == 0
    assert main([*TINY, storage, "sweep.n_trails=3"]) == 2  # Hydra echoes every override in its error
    assert main([*TINY, storage, "sweep.direction=minimize"]) == 2
    assert export_cli.main(["--storage", secret_url, "--study", "sweeps", "--out", "again"]) == 0
    assert vault_cli.main(["status", *TINY, storage]) == 0
    assert train_cli.main(["exports/sweeps/best.yaml"]) == 0
    out, err = capfd.readouterr()
    assert "postgres:***@" in out + err, "the storage is shown, masked"
    _assert_no_password("stdout", out)
    _assert_no_password("stderr", err)
    files = _files(in_tmp)
    assert {"exports/sweeps/best.yaml", "exports/sweeps/trials.csv", "exports/sweeps/test_result.json",
            "again/sweeps/best.yaml"} <= set(files)
    assert any(name.startswith("artifacts/") for name in files), "plots and checkpoints went to the artifact store"
    for name, content in files.items():
        assert PASSWORD.encode() not in content, f"the storage password appears in {name}"
    study = optuna.load_study(study_name="sweeps", storage=secret_url)
    assert _records.read(study, "experiment")["base"]["sweep"]["storage"] == mask(secret_url)
    for table, rows in _database_rows(secret_url).items():
        _assert_no_password(f"table {table}", "\n".join(rows))


def test_staged_run_keeps_the_password_out_of_stage_exports(secret_url, in_tmp, capfd):
    assert main([*STAGED, f"sweep.storage={secret_url}"]) == 0
    out, err = capfd.readouterr()
    _assert_no_password("output", out + err)
    files = _files(in_tmp)
    assert {"exports/digits_staged/best.yaml", "exports/digits_staged/stages.csv"} <= set(files)
    for name, content in files.items():
        assert PASSWORD.encode() not in content, f"the storage password appears in {name}"
    for table, rows in _database_rows(secret_url).items():
        _assert_no_password(f"table {table}", "\n".join(rows))


def test_old_study_with_a_plain_password_is_scrubbed_on_resume(secret_url, in_tmp, capfd):
    storage = f"sweep.storage={secret_url}"
    assert main([*TINY, storage]) == 0
    study = optuna.load_study(study_name="sweeps", storage=secret_url)
    record = _records.read(study, "experiment")
    record["base"]["sweep"]["storage"] = secret_url  # as studies made before masking recorded it
    study.set_user_attr("experiment", record)
    assert main([*TINY, storage]) == 0
    assert study.user_attrs["experiment"]["base"]["sweep"]["storage"] == mask(secret_url)
    assert PASSWORD not in json.dumps(study.user_attrs)


def test_real_command_line_masks_the_password(secret_url, in_tmp):
    proc = subprocess.run([sys.executable, "-m", "sweeps", *TINY, f"sweep.storage={secret_url}", "sweep.n_trials=1",
                           "--cfg"], cwd=in_tmp, env=subprocess_env(), capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"storage: {mask(secret_url)}" in proc.stdout
    _assert_no_password("the printed config", proc.stdout + proc.stderr)
