"""Resuming a study: which monitor settings may change."""

from sweeps.__main__ import main

# vault.auto_open=false: the resume extends the study, which an opened vault would refuse.
BASE = ["sweep.n_trials=1", "trainer.max_epochs=1", "trainer.num_threads=1", "vault.auto_open=false",
        "+search.optimizer.lr={type:float,low:0.01,high:0.1}"]


def test_resume_accepts_another_monitor_view_and_refuses_other_early_stopping(in_tmp, capsys):
    assert main(BASE) == 0
    assert main([*BASE[1:], "sweep.n_trials=2", "monitor=verbose", "monitor.plots=false"]) == 0
    assert main([*BASE, "monitor.patience=3"]) == 2
    assert "the fixed config changed since study 'sweeps' was created (monitor.patience)" in capsys.readouterr().err
