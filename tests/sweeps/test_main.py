"""python -m sweeps: bad input (one clear line, exit 2, nothing written) and Hydra's command line (--cfg, --info,
--multirun, output folders, passwords masked)."""

import subprocess
import sys

import pytest

from sweeps.__main__ import main
from tests.helpers import subprocess_env

QUICK = ["+experiment=quickstart", "sweep.storage=sqlite:///bad.db"]

CASES = [
    (["sweep.n_trail=3"], "n_trail"),
    (["model=mpl"], "Could not find 'model/mpl'"),
    (["+experiment=nosuch"], "Could not find 'experiment/nosuch'"),
    (["search.optimizer.lr.low=0.5"], "search.optimizer.lr: low must be <= high, got low=0.5, high=0.3"),
    (["search.optimizer.lr.low=-1"], "search.optimizer.lr: a log scale needs low > 0, got low=-1"),
    (["search.model.hidden.choices=[]"], "search.model.hidden.choices must be a non-empty list, got []"),
    (["sweep.n_trials=0"], "sweep.n_trials must be >= 1, got 0"),
    (["sweep.sampler=grid"], "sweep.sampler must be one of ['tpe', 'random', 'qmc'], got 'grid'"),
    (["sweep.tpe_startup_trials=-1"], "sweep.tpe_startup_trials must be >= 0, got -1"),
    (["sweep.pruner=fast"], "sweep.pruner must be one of"),
    (["sweep.pruner_warmup_epochs=12"],
     "sweep.pruner_warmup_epochs must be >= 0 and < trainer.max_epochs (12) or null, got 12"),
    (["sweep.pruner_warmup_epochs=-1"], "sweep.pruner_warmup_epochs must be >= 0"),
    (["sweep.metric=f1"], "sweep.metric must be one of ['val_accuracy', 'val_loss'], got 'f1'"),
    (["model.widht=3"], "widht"),
    (["+model.bogus=3"], "model (practices.models.CNN): TypeError"),
    (["data=csv"], "data.path has no value (???)"),
    (["data=csv", "data.path=/no/such.csv"], "no file at '/no/such.csv'"),
    (["monitor=loud"], "Could not find 'monitor/loud'"),
    (["monitor.every_n_steps=0"], "monitor.every_n_steps must be >= 1, got 0"),
    (["monitor.patience=0"], "monitor.patience must be >= 1 epochs or null (never stop early), got 0"),
    (["monitor.checkpoints=all"],
     "monitor.checkpoints must be one of ['best_and_last', 'best', 'last', 'none'], got 'all'"),
    (["monitor.thresholds.dead_relu=1.5"], "monitor.thresholds.dead_relu must be in (0, 1], got 1.5"),
    (["+monitor.bogus=1"], "monitor.bogus"),
    (["+search.monitor.patience={type:int,low:1,high:5}"], "search.monitor.patience: monitor.* is fixed for a study"),
]
STORAGES = [
    ("sqlite:/bad.db", "is not a valid URL"),
    ("oracle://u@h/db", "dialect 'oracle' is not supported"),
    ("sqlite:///no/such/folder/x.db", "folder 'no/such/folder' of the SQLite file does not exist"),
    ("postgresql://user:hunter2@:::bad", "not a valid SQLAlchemy URL"),
]


@pytest.mark.parametrize("overrides,message", CASES)
def test_bad_config_exits_2_with_message_and_writes_nothing(overrides, message, in_tmp, capsys):
    assert main([*QUICK, *overrides]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("error: ") and "Traceback" not in err
    assert list(in_tmp.iterdir()) == [], "nothing may be written before validation passes"


@pytest.mark.parametrize("storage,message", STORAGES)
def test_malformed_storage_exits_2_and_masks_password(storage, message, in_tmp, capsys):
    assert main(["+experiment=quickstart", f"sweep.storage={storage}"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "hunter2" not in err
    assert list(in_tmp.iterdir()) == []


def test_bad_config_in_a_real_process_has_no_traceback(in_tmp):
    proc = subprocess.run([sys.executable, "-m", "sweeps", "+experiment=quickstart", "sweep.n_trials=0"],
                          capture_output=True, text=True, timeout=600)  # a busy CI machine: seen over 120 s
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: sweep.n_trials must be >= 1, got 0"
    assert not (in_tmp / "sweeps.db").exists()


def test_help_lists_usage(capsys):
    assert main(["--help"]) == 0
    assert "+experiment=NAME" in capsys.readouterr().out


# --- Hydra's command line -------------------------------------------------------------------------------
# Small, fast sweeps: 1 trial of 3 epochs (the quickstart searches warmups of up to 2), no preflight, no monitor.
TINY = ["+experiment=quickstart", "sweep.n_trials=1", "trainer.max_epochs=3", "trainer.num_threads=1",
        "preflight=off", "monitor=off", "select=off"]
PASSWORD = "hunter2"


def _with_password(url: str) -> str:
    """``url`` (the test server trusts its users) with a password that must never be written or printed."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user.split(':')[0]}:{PASSWORD}@{host}"


def _files_holding(folder, text):
    return [p for p in folder.rglob("*") if p.is_file() and text in p.read_text(errors="replace")]


def test_help_answers_without_importing_torch_optuna_or_hydra():
    code = ("import sys; from sweeps.__main__ import main; main(['--help']); "
            "print(sorted(m for m in ('torch', 'optuna', 'hydra', 'matplotlib', 'pandas') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env=subprocess_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "+experiment=NAME" in proc.stdout and "--multirun" in proc.stdout


def test_help_lists_the_experiments_and_how_to_turn_output_folders_off(capsys):
    assert main(["-h"]) == 0
    out = capsys.readouterr().out
    assert "digits_cnn, digits_mlp, digits_staged, mnist1d_cnn, quickstart" in out
    assert "hydra.output_subdir=null" in out and "hydra/job_logging=none" in out and "hydra.run.dir=." in out


def test_version_names_sweeps_and_hydra(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sweeps 0.1.0") and "hydra-core 1.3" in out


def test_no_experiment_exits_2_and_says_what_to_run(in_tmp, capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing to search") and err.count("\n") == 1
    assert "+experiment=NAME" in err and "quickstart" in err and "digits_staged" in err
    assert list(in_tmp.iterdir()) == []


@pytest.mark.parametrize("args,message", [
    (["--cfg", "jb"], "argument --cfg/-c: invalid choice: 'jb'"),
    (["--cfg", "job", "-m"], "only one of --run, --multirun, --cfg, --info and --shell-completion"),
    (["--resolve"], "--resolve only goes with --cfg"),
    (["--config-dir", "x"], "--config-dir is not supported"),
    (["--config-name", "other"], "--config-name is not supported"),
    (["-m", "sweep.seed=interval(0,1)"], "not intervals"),
    (["-m", "hydra/sweeper=optuna"], "Could not find 'hydra/sweeper/optuna'"),
])
def test_bad_hydra_flags_exit_2_with_one_line(args, message, in_tmp, capsys):
    assert main(["+experiment=quickstart", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and "Traceback" not in err
    assert list(in_tmp.iterdir()) == []


def test_cfg_job_prints_the_composed_config_with_the_password_masked(in_tmp, capsys):
    storage = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test"
    assert main(["+experiment=quickstart", f"sweep.storage={storage}", "sweep.n_trials=7", "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert "storage: postgresql://postgres:***@127.0.0.1:5432/test" in out
    assert "n_trials: 7" in out and "hydra:" not in out
    assert PASSWORD not in out
    assert list(in_tmp.iterdir()) == [], "--cfg runs nothing and writes nothing"


@pytest.mark.parametrize("flag,present,absent", [
    (["--cfg", "hydra"], ["hydra:", "name: sweeps", "postgres:***@"], ["n_trials:"]),
    (["--cfg", "all"], ["hydra:", "n_trials: 30", "postgres:***@"], []),
    (["--cfg", "job", "--package", "sweep"], ["# @package sweep", "n_trials: 30"], ["model:"]),
    (["--cfg"], ["n_trials: 30", "postgres:***@"], ["hydra:"]),  # a bare --cfg means --cfg job
    (["--info"], ["Config search path", "Defaults Tree", "postgres:***@"], []),
])
def test_cfg_and_info_behave_as_in_hydra_and_mask_passwords(flag, present, absent, in_tmp, capsys):
    storage = f"sweep.storage=postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test"
    assert main(["+experiment=quickstart", storage, *flag]) == 0
    out = capsys.readouterr().out
    assert PASSWORD not in out
    for text in present:
        assert text in out
    for text in absent:
        assert text not in out
    assert list(in_tmp.iterdir()) == []


def test_shell_completion_installs_for_bash(in_tmp, capsys):
    assert main(["--shell-completion", "install=bash"]) == 0
    assert "hydra_bash_completion" in capsys.readouterr().out


def test_cfg_job_finds_an_experiment_on_hydra_searchpath(in_tmp, capsys):
    (in_tmp / "my_conf/experiment").mkdir(parents=True)
    (in_tmp / "my_conf/experiment/mine.yaml").write_text(
        "# @package _global_\nsearch:\n  model:\n    width: {type: int, low: 4, high: 16}\n")
    assert main([f"hydra.searchpath=[file://{in_tmp}/my_conf]", "+experiment=mine", "--cfg", "job"]) == 0
    out = capsys.readouterr().out
    assert "width:" in out and "low: 4" in out and "high: 16" in out


@pytest.mark.slow
def test_run_keeps_hydra_output_folder_and_the_sweep_files_in_the_current_folder(in_tmp, capsys):
    assert main([*TINY, "sweep.study_name=kept"]) == 0
    out = capsys.readouterr().out
    assert (in_tmp / "sweeps.db").exists() and (in_tmp / "exports/kept/best.yaml").exists()
    (run,) = list((in_tmp / "outputs").glob("*/*"))
    assert sorted(p.name for p in (run / ".hydra").iterdir()) == ["config.yaml", "hydra.yaml", "overrides.yaml"]
    assert "study_name: kept" in (run / ".hydra/config.yaml").read_text()
    log = (run / "sweeps.log").read_text()
    assert "[1/1] trial 0" in log and "exported: exports/kept/trials.csv" in log
    assert "[1/1] trial 0" in out
    assert not list(run.glob("exports")) and not list(run.glob("*.db")), "hydra.job.chdir stays off"


@pytest.mark.slow
def test_run_output_folder_can_be_turned_off(in_tmp):
    assert main([*TINY, "hydra.output_subdir=null", "hydra/job_logging=none", "hydra.run.dir=."]) == 0
    # sweeps.db-wal and -shm belong to the database while this process holds it open (write-ahead log).
    names = sorted(p.name for p in in_tmp.iterdir() if not p.name.endswith(("-wal", "-shm")))
    assert names == ["exports", "sweeps.db"], "no outputs/, .hydra/, sweeps.log"


@pytest.mark.slow
def test_multirun_runs_one_sweep_per_combination_and_masks_the_password(in_tmp, capsys, postgres_url):
    storage = _with_password(postgres_url)
    assert main(["-m", *TINY, f"sweep.storage={storage}", "sweep.seed=0,1"]) == 0
    out = capsys.readouterr().out
    for seed in (0, 1):
        assert (in_tmp / f"exports/quickstart-sweep.seed_{seed}/best.yaml").exists()
    (sweep,) = list((in_tmp / "multirun").glob("*/*"))
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "multirun.yaml"]
    for number, seed in (("0", 0), ("1", 1)):
        assert f"seed: {seed}" in (sweep / number / ".hydra/config.yaml").read_text()
        assert f"study 'quickstart-sweep.seed_{seed}'" in (sweep / number / "sweeps.log").read_text()
    assert _files_holding(in_tmp / "multirun", PASSWORD) == []
    assert PASSWORD not in out
    assert "postgres:***@" in (sweep / "multirun.yaml").read_text()


@pytest.mark.slow
def test_multirun_validates_every_run_before_the_first_starts(in_tmp, capsys):
    assert main(["-m", *TINY, "sweep.n_trials=1,0"]) == 2
    err = capsys.readouterr().err
    assert err == "error: run #1 of 2 (+experiment=quickstart sweep.n_trials=0 trainer.max_epochs=3 " \
                  "trainer.num_threads=1 preflight=off monitor=off select=off): sweep.n_trials must be >= 1, got 0\n"
    assert list(in_tmp.iterdir()) == []


@pytest.mark.slow
def test_multirun_stops_at_the_first_run_that_does_not_exit_0(in_tmp, capsys):
    broken = ["data._target_=tests.helpers.blobs", "model=mlp", "model._target_=tests.helpers.BrokenBackward",
              "+search.optimizer.lr={type:float,low:0.01,high:0.1}", "trainer.max_epochs=1", "sweep.n_trials=3"]
    assert main(["-m", *broken, "sweep.seed=0,1"]) == 3
    err = capsys.readouterr().err
    assert "multirun stopped: run #0 of 2 exited with code 3; 1 run(s) did not start" in err
    (sweep,) = list((in_tmp / "multirun").glob("*/*"))
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "multirun.yaml"]


@pytest.mark.slow
def test_run_refused_once_the_study_is_open_leaves_no_output_folder(in_tmp, capsys):
    assert main([*TINY, "vault.auto_open=false", "hydra.run.dir=first"]) == 0
    assert main([*TINY, "vault.auto_open=false", "trainer.batch_size=64", "hydra.run.dir=outputs/second"]) == 2
    err = capsys.readouterr().err
    assert "the fixed config changed since study 'quickstart' was created" in err
    assert not (in_tmp / "outputs").exists(), "a refused run leaves no Hydra folder behind"
    assert (in_tmp / "first/sweeps.log").exists()


@pytest.mark.slow
def test_multirun_names_a_study_per_combination_when_study_name_is_null(in_tmp, capsys):
    assert main(["-m", *TINY, "sweep.seed=0,1", "vault.auto_open=false"]) == 0
    assert sorted(p.name for p in (in_tmp / "exports").iterdir()) == ["quickstart-sweep.seed_0",
                                                                       "quickstart-sweep.seed_1"]
    assert "study 'quickstart-sweep.seed_1' in sqlite:///sweeps.db" in capsys.readouterr().out


@pytest.mark.slow
def test_multirun_over_experiments_runs_one_sweep_per_experiment(in_tmp, capsys):
    # wine searches no warm-up: 3 epochs build for both experiments.
    assert main(["-m", "+experiment=quickstart,wine", *TINY[1:], "vault.auto_open=false"]) == 0
    assert sorted(p.name for p in (in_tmp / "exports").iterdir()) == ["quickstart", "wine"]
    (sweep,) = list((in_tmp / "multirun").glob("*/*"))
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "multirun.yaml"]
    assert "study 'wine' in sqlite:///sweeps.db" in (sweep / "1/sweeps.log").read_text()
    assert "label: cultivar" in (sweep / "1/.hydra/config.yaml").read_text()


def test_multirun_study_name_from_a_swept_storage_holds_no_password():
    from sweeps.driver._app import _own_study_name

    storages = [f"sweep.storage=postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{db}" for db in ("a", "b")]
    names = [_own_study_name("quickstart", ["+experiment=quickstart", s], {"sweep.storage"}) for s in storages]
    assert names == [[f"sweep.study_name=quickstart-sweep.storage_postgresql___postgres_____127.0.0.1_5432_{db}"]
                     for db in ("a", "b")], "the password masked (postgres:***@), then made a safe name"


def test_multirun_refuses_two_runs_of_one_study(in_tmp, capsys):
    assert main(["-m", *TINY, "sweep.seed=0,1", "sweep.study_name=same"]) == 2
    err = capsys.readouterr().err
    assert "runs #0 and #1 of the multirun would both run study 'same' in sqlite:///sweeps.db" in err
    assert list(in_tmp.iterdir()) == []


def test_an_unexpected_error_shows_hydra_report_with_passwords_masked(in_tmp, capsys, monkeypatch):
    import sweeps.driver._app
    import sweeps.driver._driver

    def crash(exp, data):
        raise RuntimeError(f"boom at {exp.cfg.sweep.storage}")

    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test"
    monkeypatch.setattr(sweeps.driver._driver, "run", crash)
    monkeypatch.setattr(sweeps.driver._app, "prepare", lambda overrides, **_: (_FakeExp(url), None))  # no server needed
    assert main(["+experiment=quickstart", f"sweep.storage={url}"]) == 1
    err = capsys.readouterr().err
    assert "Error executing job with overrides" in err and "RuntimeError: boom at postgresql://postgres:***@" in err
    assert PASSWORD not in err


class _FakeExp:
    """Just what the run reads before it crashes."""

    def __init__(self, storage):
        from omegaconf import OmegaConf

        self.cfg = OmegaConf.create({"sweep": {"storage": storage}, "search": {"x": 1}, "stages": None})
