"""Bad input, by class (docs/reliability.md): every command refuses it with one line on stderr, the
exit code of sweeps._exit, no traceback, nothing written, and the key named.

Most cases call the commands' ``main`` in-process (a fresh working folder each); a handful run the
real command line in subprocesses, started together."""

import dataclasses
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import sweeps.vault.__main__ as vault_cli
from sweeps import export as export_cli
from sweeps import preflight as preflight_cli
from sweeps import train as train_cli
from sweeps.__main__ import main as sweep_main
from sweeps._exit import EXIT_CONFIG, EXIT_STORAGE
from sweeps.experiment._experiment import prepare
from tests.helpers import subprocess_env

MAINS = {"sweeps": sweep_main, "export": export_cli.main, "vault": vault_cli.main, "preflight": preflight_cli.main,
         "train": train_cli.main}
QUICK = ["+experiment=quickstart"]
# Keys of the CNN config that a planted model does not take.
PLANTED = ["~model.channels", "~model.kernel_size", "~model.hidden", "~model.dropout", "~model.activation",
           "~search.model"]
NO_SERVER = "postgresql://postgres:s3cretPW@127.0.0.1:1/sweeps"  # nothing listens on port 1
NO_DATABASE = "postgresql://postgres:s3cretPW@127.0.0.1:5432/sweeps_no_such_database"
NO_DRIVER = "mysql://user:s3cretPW@127.0.0.1:3306/sweeps"  # neither MySQLdb nor pymysql is installed


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    argv: tuple
    key: str
    code: int = EXIT_CONFIG
    command: str = "sweeps"


def case(id, argv, key, code=EXIT_CONFIG, command="sweeps"):
    return pytest.param(Case(id, tuple(argv), key, code, command), id=id)


STORAGE = [
    case("sqlite-file-as-journal-path", [*QUICK, "sweep.storage={fx}/study.db"], "sweep.storage=sqlite:///"),
    case("directory-as-journal-path", [*QUICK, "sweep.storage={fx}/folder"], "sweep.storage"),
    case("directory-as-sqlite", [*QUICK, "sweep.storage=sqlite:///{fx}/folder"], "sweep.storage"),
    case("text-file-as-journal", [*QUICK, "sweep.storage={fx}/notes.txt"], "sweep.storage"),
    case("text-file-as-sqlite", [*QUICK, "sweep.storage=sqlite:///{fx}/notes.txt"], "sweep.storage"),
    case("db-suffix-without-sqlite-scheme", [*QUICK, "sweep.storage=new.db"], "sweep.storage=sqlite:///new.db"),
    case("url-missing-slashes", [*QUICK, "sweep.storage=sqlite:/bad.db"], "sweep.storage"),
    case("unsupported-dialect", [*QUICK, "sweep.storage=oracle://u@h/db"], "sweep.storage"),
    case("unknown-driver", [*QUICK, "sweep.storage=postgresql+nodriver://u@h/db"], "sweep.storage"),
    case("sqlite-folder-missing", [*QUICK, "sweep.storage=sqlite:///no/such/x.db"], "sweep.storage"),
    case("journal-folder-missing", [*QUICK, "sweep.storage=no/such/x.journal"], "sweep.storage"),
    case("malformed-url", [*QUICK, "sweep.storage=postgresql://u:s3cretPW@:::bad"], "sweep.storage"),
    case("empty-storage", [*QUICK, "sweep.storage=''"], "sweep.storage"),
    case("sqlite-with-two-workers", [*QUICK, "sweep.n_workers=2"], "sweep.n_workers"),
    case("server-unreachable", [*QUICK, f"sweep.storage={NO_SERVER}"], "sweep.storage", EXIT_STORAGE),
    case("database-missing", [*QUICK, f"sweep.storage={NO_DATABASE}"], "sweep.storage", EXIT_STORAGE),
    case("driver-not-installed", [*QUICK, f"sweep.storage={NO_DRIVER}"], "sweep.storage", EXIT_STORAGE),
    case("grpc-proxy-unreachable", [*QUICK, "sweep.storage=grpc://127.0.0.1:1"], "sweep.storage", EXIT_STORAGE),
    case("grpc-without-port", [*QUICK, "sweep.storage=grpc://127.0.0.1"], "sweep.storage"),
    case("export-server-unreachable", ["--storage", NO_SERVER, "--study", "q"], "--storage", EXIT_STORAGE, "export"),
    case("export-driver-not-installed", ["--storage", NO_DRIVER, "--study", "q"], "--storage", EXIT_STORAGE, "export"),
    case("export-sqlite-file-as-journal", ["--storage", "{fx}/study.db", "--study", "q"], "--storage",
         command="export"),
    case("export-missing-sqlite-file", ["--storage", "sqlite:///nothing.db", "--study", "q"], "--storage",
         command="export"),
    case("vault-server-unreachable", ["status", *QUICK, f"sweep.storage={NO_SERVER}"], "sweep.storage", EXIT_STORAGE,
         "vault"),
    case("vault-missing-sqlite-file", ["status", *QUICK], "sweep.storage", command="vault"),
    case("preflight-malformed-storage", [*QUICK, "sweep.storage=oracle://u@h/db"], "sweep.storage",
         command="preflight"),
]
VALUES = [
    case("sweep-seed-negative", [*QUICK, "sweep.seed=-1"], "sweep.seed"),
    case("sweep-seed-too-large", [*QUICK, "sweep.seed=4294967295"], "sweep.seed"),
    case("sweep-seed-not-int", [*QUICK, "sweep.seed=abc"], "sweep.seed"),
    case("split-seed-negative", [*QUICK, "split.seed=-1"], "split.seed"),
    case("preflight-seed-negative", [*QUICK, "preflight.seed=-1"], "preflight.seed"),
    case("val-fraction-too-small", [*QUICK, "split.val_fraction=0.001"], "split.val_fraction"),
    case("test-fraction-too-small", [*QUICK, "split.test_fraction=0.001"], "split.test_fraction"),
    case("val-fraction-zero", [*QUICK, "split.val_fraction=0"], "split.val_fraction"),
    case("fractions-sum-to-one", [*QUICK, "split.val_fraction=0.5", "split.test_fraction=0.5"], "split.val_fraction"),
    case("lr-range-test-not-bool", [*QUICK, "lr_range_test=maybe"], "lr_range_test"),
    case("lr-range-test-int", [*QUICK, "lr_range_test=1"], "lr_range_test"),
    case("interpolation-key-missing", [*QUICK, "sweep.storage=${nope}"], "sweep.storage cannot be resolved"),
    case("study-name-escapes", [*QUICK, "sweep.study_name=../escaped"], "sweep.study_name"),
    case("study-name-leading-dot", [*QUICK, "sweep.study_name=.hidden"], "sweep.study_name"),
    case("study-name-separator", [*QUICK, "sweep.study_name=a/b"], "sweep.study_name"),
    case("study-name-space", [*QUICK, "sweep.study_name='my study'"], "sweep.study_name"),
    case("mnist1d-too-few-samples", ["+experiment=mnist1d_cnn", "data.num_samples=5"], "data.num_samples"),
    case("csv-one-class", ["data=csv", "data.path={fx}/one_class.csv"], "data"),
    case("csv-class-too-small", ["data=csv", "data.path={fx}/tiny_class.csv"], "data"),
    case("csv-standardize-not-bool", ["data=csv", "data.path={fx}/two_classes.csv", "data.standardize=maybe"],
         "data.standardize"),
    case("csv-standardize-int", ["data=csv", "data.path={fx}/two_classes.csv", "data.standardize=1"],
         "data.standardize"),
    case("csv-label-missing", ["data=csv", "data.path={fx}/one_class.csv", "data.label=kind"], "data.label"),
    case("direction-contradicts-val-loss", [*QUICK, "sweep.metric=val_loss", "sweep.direction=maximize"],
         "sweep.direction"),
    case("direction-contradicts-val-accuracy", [*QUICK, "sweep.direction=minimize"], "sweep.direction"),
    case("direction-unknown", [*QUICK, "sweep.direction=up"], "sweep.direction"),
    case("metric-unknown", [*QUICK, "sweep.metric=f1"], "sweep.metric"),
    case("n-trials-zero", [*QUICK, "sweep.n_trials=0"], "sweep.n_trials"),
    case("failure-rate-above-one", [*QUICK, "sweep.max_failure_rate=2"], "sweep.max_failure_rate"),
    case("timeout-negative", [*QUICK, "sweep.timeout=-5"], "sweep.timeout"),
    case("max-epochs-zero", [*QUICK, "trainer.max_epochs=0"], "trainer.max_epochs"),
    case("batch-size-zero", [*QUICK, "trainer.batch_size=0"], "trainer.batch_size"),
    case("device-unknown", [*QUICK, "trainer.device=tpu"], "trainer.device"),
    case("averaging-unknown", [*QUICK, "trainer.averaging=maybe"], "trainer.averaging"),
    case("ema-decay-above-one", [*QUICK, "trainer.averaging=ema", "trainer.ema_decay=1.5"], "trainer.ema_decay"),
    case("ema-decay-not-a-number", [*QUICK, "trainer.ema_decay=abc"], "trainer.ema_decay"),
    case("swa-start-negative", [*QUICK, "trainer.averaging=swa", "trainer.swa_start_epoch=-1"],
         "trainer.swa_start_epoch"),
    case("swa-start-after-max-epochs", [*QUICK, "trainer.averaging=swa", "trainer.swa_start_epoch=13"],
         "trainer.swa_start_epoch=13"),
    case("final-model-unknown", [*QUICK, "vault.final_model=best"], "vault.final_model"),
    case("select-top-k-zero", [*QUICK, "select.top_k=0"], "select.top_k"),
    case("select-n-seeds-zero", [*QUICK, "select.n_seeds=0"], "select.n_seeds"),
    case("select-unknown-key", [*QUICK, "+select.n_seed=3"], "select.n_seed"),
    case("preflight-cli-bad-value", [*QUICK, "sweep.seed=-1"], "sweep.seed", command="preflight"),
    case("vault-cli-bad-value", ["open", *QUICK, "split.seed=-1"], "split.seed", command="vault"),
    case("train-override-bad-value", [*QUICK, "trainer.max_epochs=0"], "trainer.max_epochs", command="train"),
    case("train-not-yaml", ["{fx}/broken.yaml"], "config", command="train"),
    case("train-not-a-mapping", ["{fx}/list.yaml"], "config", command="train"),
]
SPACE = [
    case("warmup-vs-max-epochs", [*QUICK, "trainer.max_epochs=2"], "search.schedule.options.cosine.warmup_epochs=2"),
    case("categorical-invalid-choice", [*QUICK, "search.model.hidden.choices=[32,abc]"], "search.model.hidden='abc'"),
    case("momentum-range-negative", [*QUICK, "search.optimizer.momentum.low=-0.5"], "search.optimizer.momentum=-0.5"),
    case("step-epochs-zero", [*QUICK, "search.schedule.options.step.step_epochs.low=0"],
         "search.schedule.options.step.step_epochs=0"),
    case("activation-invalid-choice", [*QUICK, "+search.model.activation={type:categorical,choices:[relu,swish]}"],
         "search.model.activation='swish'"),
    case("searched-max-epochs-vs-warmup", [*QUICK, "+search.trainer.max_epochs={type:int,low:1,high:12}"],
         "search.trainer.max_epochs=1"),
    case("mlp-max-epochs-vs-warmup", ["+experiment=digits_mlp", "trainer.max_epochs=3"],
         "search.schedule.options.cosine.warmup_epochs=5"),
    case("group-option-range-below-allowed", [*QUICK, "search.schedule.options.cosine.warmup_epochs.low=-1"],
         "search.schedule.options.cosine.warmup_epochs=-1"),
    case("searched-ema-decay-above-one", [*QUICK, "+search.trainer.ema_decay={type:float,low:0.9,high:1.5}"],
         "search.trainer.ema_decay=1.5"),
    case("searched-averaging-unknown", [*QUICK, "+search.trainer.averaging={type:categorical,choices:[ema,maybe]}"],
         "search.trainer.averaging='maybe'"),
    case("low-above-high", [*QUICK, "search.optimizer.lr.low=0.5"], "search.optimizer.lr"),
    case("log-scale-nonpositive", [*QUICK, "search.optimizer.lr.low=-1"], "search.optimizer.lr"),
    case("empty-choices", [*QUICK, "search.model.hidden.choices=[]"], "search.model.hidden"),
    case("frozen-key-searched", [*QUICK, "+search.split.seed={type:int,low:0,high:3}"], "search.split.seed"),
    case("select-key-searched", [*QUICK, "+search.select.top_k={type:int,low:1,high:3}"], "search.select.top_k"),
    case("unknown-searched-key", [*QUICK, "+search.model.widht={type:int,low:1,high:3}"], "search.model.widht"),
]
USER_CODE = [
    case("model-forward-raises", [*QUICK, *PLANTED, "model._target_=tests.helpers.FailsInForward"], "model"),
    case("model-output-wrong-shape", [*QUICK, *PLANTED, "model._target_=tests.helpers.WrongShape"], "model"),
    case("model-not-callable", [*QUICK, *PLANTED, "model._target_=math.pi"], "model"),
    case("model-not-importable", [*QUICK, *PLANTED, "model._target_=nosuch.module.Model"], "model"),
    case("model-unknown-key", [*QUICK, "+model.bogus=3"], "model"),
    case("adam-beta1-not-below-one", [*QUICK, "optimizer=adam", "~search.optimizer.momentum", "optimizer.beta1=1.5"],
         "optimizer"),
    case("adam-searched-beta2-above-one", [*QUICK, "optimizer=adam", "~search.optimizer.momentum",
                                           "+search.optimizer.beta2={type:float,low:0.9,high:1.5}"],
         "search.optimizer.beta2=1.5"),
    case("optimizer-not-importable", [*QUICK, "optimizer._target_=torch.optim.Nope"], "optimizer"),
    case("schedule-not-callable", [*QUICK, "schedule._target_=math.pi"], "schedule"),
    case("data-loader-missing", [*QUICK, "data._target_=tests.helpers.nosuch"], "data"),
    case("data-loader-raises", [*QUICK, "data._target_=tests.helpers.leaky_blobs", "+data.n_leaks=abc"], "data"),
]
ALL = STORAGE + VALUES + SPACE + USER_CODE


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """Files the bad invocations point at, in a folder outside the working folder."""
    folder = tmp_path_factory.mktemp("fixtures")
    with sqlite3.connect(folder / "study.db") as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    (folder / "folder").mkdir()
    (folder / "notes.txt").write_text("not a storage\n")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a", "b", "c"])
    frame.assign(label="only").to_csv(folder / "one_class.csv", index=False)
    frame.assign(label=["x"] * 14 + ["y"] * 14 + ["z"] * 2).to_csv(folder / "tiny_class.csv", index=False)
    frame.assign(label=["x", "y"] * 15).to_csv(folder / "two_classes.csv", index=False)
    (folder / "broken.yaml").write_text("sweep: [1,\n")
    (folder / "list.yaml").write_text("- 1\n- 2\n")
    return folder


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _argv(c, fx):
    return [a.replace("{fx}", str(fx)) for a in c.argv]


def _no_sweep(*args, **kwargs):
    raise AssertionError("the invocation passed validation: it would have run the sweep")


@pytest.mark.parametrize("c", ALL)
def test_bad_input_is_refused_in_one_line_and_writes_nothing(c, fx, in_tmp, capsys, monkeypatch):
    import sweeps.driver._driver
    import sweeps.driver._staged

    monkeypatch.setattr(sweeps.driver._driver, "run", _no_sweep)
    monkeypatch.setattr(sweeps.driver._staged, "run_stages", _no_sweep)
    before = _listing(fx)
    code = MAINS[c.command](_argv(c, fx))
    out, err = capsys.readouterr()
    assert code == c.code, err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert c.key in lines[0]
    assert "s3cretPW" not in out + err
    assert _listing(in_tmp) == [], "nothing may be written before validation passes"
    assert _listing(fx) == before


def test_the_table_covers_at_least_60_bad_invocations():
    assert len(ALL) >= 60
    assert min(len(STORAGE), len(VALUES), len(SPACE), len(USER_CODE)) >= 9, "every class has cases"


VALID = [
    pytest.param([*QUICK, "split.val_fraction=0.0056"], id="val-fraction-at-the-suggested-bound"),
    pytest.param([*QUICK, "trainer.max_epochs=3"], id="max-epochs-above-warmup"),
    pytest.param([*QUICK, "sweep.metric=val_loss"], id="val-loss-direction-derived"),
    pytest.param([*QUICK, "sweep.metric=val_loss", "sweep.direction=minimize"], id="val-loss-direction-stated"),
    pytest.param([*QUICK, "sweep.study_name=Quick-start_2.v1", "sweep.seed=4294967294"], id="safe-name-largest-seed"),
    pytest.param(["data=csv", "data.path={fx}/two_classes.csv"], id="csv-two-classes"),
    pytest.param([*QUICK, "sweep.storage=sqlite:///{fx}/study.db"], id="existing-sqlite-file"),
    pytest.param([*QUICK, "sweep.storage=new.journal", "sweep.n_workers=2"], id="new-journal-two-workers"),
    pytest.param([*QUICK, "lr_range_test=true"], id="lr-range-test-bool"),
    pytest.param([*QUICK, "sweep.study_name=x${sweep.seed}"], id="study-name-interpolates-the-seed"),
    pytest.param(["+experiment=wine"], id="tabular-example"),
    pytest.param(["data=csv", "data.path={fx}/two_classes.csv", "data.standardize=false"], id="csv-raw-features"),
]


@pytest.mark.parametrize("argv", VALID)
def test_valid_input_passes_validation_and_the_probe(argv, fx, in_tmp):
    exp, data = prepare([a.replace("{fx}", str(fx)) for a in argv])
    assert exp.cfg.sweep.direction == ("minimize" if exp.cfg.sweep.metric == "val_loss" else "maximize")
    assert len(np.unique(data.y_val)) == data.n_classes
    assert _listing(in_tmp) == [], "validation and the storage probe write nothing"


def test_valid_postgresql_storage_passes_the_probe(postgres_url, in_tmp):
    exp, _ = prepare([*QUICK, f"sweep.storage={postgres_url}"])
    assert exp.cfg.sweep.storage == postgres_url


def test_suggested_val_fraction_bound_is_tight(in_tmp, capsys):
    assert sweep_main([*QUICK, "split.val_fraction=0.005"]) == EXIT_CONFIG
    assert "use split.val_fraction >= 0.0056" in capsys.readouterr().err


SUBPROCESS = [
    pytest.param(["sweeps", *QUICK, "sweep.seed=-1"], EXIT_CONFIG, "sweep.seed", id="sweeps-bad-value"),
    pytest.param(["sweeps", *QUICK, f"sweep.storage={NO_SERVER}"], EXIT_STORAGE, "sweep.storage",
                 id="sweeps-no-server"),
    pytest.param(["sweeps", *QUICK, "trainer.max_epochs=2"], EXIT_CONFIG, "warmup_epochs", id="sweeps-space"),
    pytest.param(["sweeps.export", "--storage", "{fx}/study.db", "--study", "q"], EXIT_CONFIG, "--storage",
                 id="export-sqlite-as-journal"),
    pytest.param(["sweeps.vault", "status", *QUICK, f"sweep.storage={NO_DRIVER}"], EXIT_STORAGE, "sweep.storage",
                 id="vault-no-driver"),
]


@pytest.fixture(scope="module")
def cli_runs(fx, tmp_path_factory):
    """Every subprocess case, started at once (each spends seconds importing torch)."""
    runs = {}
    for param in SUBPROCESS:
        argv, _, _ = param.values
        cwd = tmp_path_factory.mktemp("cli")
        command = [sys.executable, "-m", *[a.replace("{fx}", str(fx)) for a in argv]]
        runs[param.id] = (cwd, subprocess.Popen(command, cwd=cwd, env=subprocess_env(), stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True))
    done = {}
    for name, (cwd, proc) in runs.items():
        out, err = proc.communicate(timeout=300)
        done[name] = (cwd, proc.returncode, out, err)
    return done


@pytest.mark.parametrize("argv,code,key", SUBPROCESS)
def test_real_command_line_refuses_in_one_line(argv, code, key, cli_runs, request):
    cwd, returncode, out, err = cli_runs[request.node.callspec.id]
    assert returncode == code, err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], err
    assert "s3cretPW" not in out + err
    assert _listing(cwd) == []


# Runs python -m sweeps with argv[1:] and prints, at exit, which of these it had imported.
_IMPORTS_AT_EXIT = """
import atexit, runpy, sys
HEAVY = ("torch", "sklearn", "pandas", "scipy", "matplotlib")
atexit.register(lambda: print(sorted(m for m in HEAVY if m in sys.modules)))
sys.argv = ["sweeps", *sys.argv[1:]]
runpy.run_module("sweeps", run_name="__main__")
"""


@pytest.mark.parametrize("argv,key", [
    pytest.param(["sweep.n_trials=0"], "sweep.n_trials", id="schema"),
    pytest.param([*QUICK, "trainer.averaging=polyak"], "trainer.averaging", id="practices-option"),
    pytest.param([*QUICK, "sweep.n_trial=3"], "sweep.n_trial", id="hydra-unknown-key"),
    pytest.param([*QUICK, "sweep.storage=bogus://x"], "sweep.storage", id="storage-url"),
])
def test_bad_config_is_refused_before_torch_is_imported(argv, key, tmp_path):
    # A typo is answered in under a second: torch, scikit-learn, pandas and scipy take ~2.5 s to import.
    proc = subprocess.run([sys.executable, "-c", _IMPORTS_AT_EXIT, *argv], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout
    assert _listing(tmp_path) == []


def test_valid_config_imports_torch_for_its_build_check(tmp_path):
    # The other side of the test above, so that its probe can fail: a valid config's build check loads torch.
    proc = subprocess.run([sys.executable, "-c", _IMPORTS_AT_EXIT, *QUICK, "--cfg", "job"], cwd=tmp_path,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    imported = proc.stdout.strip().splitlines()[-1]
    assert "'torch'" in imported and "'sklearn'" in imported, imported
