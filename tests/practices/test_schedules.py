import math

import pytest
import torch

from practices import schedules


def _lrs(make, n_epochs, metrics=None, lr0=0.1):
    """The learning rate each of the first ``n_epochs`` epochs trains with."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = make(opt)
    out = []
    for epoch in range(n_epochs):
        out.append(opt.param_groups[0]["lr"])
        if schedules.needs_metric(sched):
            sched.step(metrics[epoch])
        else:
            sched.step()
    return out


def test_constant_keeps_lr():
    assert _lrs(schedules.constant, 5) == pytest.approx([0.1] * 5)


def test_step_multiplies_every_n_epochs():
    got = _lrs(lambda o: schedules.step(o, step_epochs=3, factor=0.5), 8)
    assert got == pytest.approx([0.1 * 0.5 ** (t // 3) for t in range(8)])


def test_exponential_matches_closed_form():
    k = 0.2
    got = _lrs(lambda o: schedules.exponential(o, k=k), 10)
    assert got == pytest.approx([0.1 * math.exp(-k * t) for t in range(10)], rel=1e-9)


def test_inverse_time_matches_closed_form():
    k = 0.5
    got = _lrs(lambda o: schedules.inverse_time(o, k=k), 10)
    assert got == pytest.approx([0.1 / (1 + k * t) for t in range(10)], rel=1e-12)


def test_plateau_reduces_after_patience_epochs_without_improvement():
    # accuracy improves for 3 epochs then stalls; patience 2 -> cut after 3 non-improving epochs
    metrics = [0.5, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    got = _lrs(lambda o: schedules.plateau(o, factor=0.5, patience=2, mode="maximize"), 10, metrics)
    assert got == pytest.approx([0.1] * 6 + [0.05] * 3 + [0.025])


def test_plateau_minimize_mode_watches_a_falling_metric():
    metrics = [1.0, 0.9, 0.8, 0.7, 0.6]
    got = _lrs(lambda o: schedules.plateau(o, factor=0.5, patience=1, mode="min"), 5, metrics)
    assert got == pytest.approx([0.1] * 5)


def test_cosine_matches_closed_form():
    n = 10
    got = _lrs(lambda o: schedules.cosine(o, n_epochs=n), n)
    assert got == pytest.approx([0.05 * (1 + math.cos(math.pi * t / n)) for t in range(n)], rel=1e-9)


def test_cosine_warmup_rises_linearly_then_anneals():
    n, w = 10, 2
    got = _lrs(lambda o: schedules.cosine(o, n_epochs=n, warmup_epochs=w), n)
    assert got[:w] == pytest.approx([0.1 / 3, 0.1 * 2 / 3])
    assert got[w:] == pytest.approx([0.05 * (1 + math.cos(math.pi * t / (n - w))) for t in range(n - w)], rel=1e-9)


def test_cosine_rejects_warmup_longer_than_run():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="warmup_epochs"):
        schedules.cosine(opt, n_epochs=3, warmup_epochs=3)
