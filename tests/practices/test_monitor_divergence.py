"""The divergence guard on hand-fed numbers."""

import math

import pytest

from practices.monitor import Diverged, DivergenceGuard, Thresholds
from practices.train import EpochStats, NonFiniteLossError


def test_divergence_guard_loss_blowup_raises_with_the_numbers():
    guard = DivergenceGuard(Thresholds(loss_blowup_factor=10.0))
    guard.check_loss(20.0, 2.3, epoch=1, step=4)  # 8.7x: within the limit
    with pytest.raises(Diverged) as caught:
        guard.check_loss(30.0, 2.3, epoch=2, step=9)
    assert (caught.value.epoch, caught.value.step) == (2, 9)
    assert caught.value.diagnosis == guard.divergence
    assert guard.divergence.numbers == {"loss": 30.0, "initial_loss": 2.3, "step": 9}
    assert guard.divergence.severity == "error" and "13x the initial 2.3 (limit 10x)" in guard.divergence.summary


def test_divergence_guard_gradient_blowup_needs_five_earlier_samples():
    guard = DivergenceGuard(Thresholds(grad_blowup_factor=100.0))
    guard.check_gradients(1e6, [1.0] * 4, epoch=1, step=4)  # too few samples to judge
    assert guard.divergence is None
    with pytest.raises(Diverged, match="gradient norm blew up to 1e\\+06"):
        guard.check_gradients(1e6, [1.0] * 5, epoch=1, step=5)


def test_divergence_guard_non_finite_values_and_epochs():
    with pytest.raises(Diverged, match="non-finite gradient norm"):
        DivergenceGuard(Thresholds()).check_gradients(math.inf, [], epoch=1, step=0)
    with pytest.raises(Diverged, match="non-finite val loss"):
        DivergenceGuard(Thresholds()).check_epoch(EpochStats(3, 1.0, math.nan, 0.1, 0.1), 2.3)


def test_divergence_guard_keeps_the_first_divergence_without_raising_when_told():
    guard = DivergenceGuard(Thresholds(), stop_on_divergence=False)
    guard.check_loss(math.nan, 2.3, epoch=1, step=3)
    first = guard.divergence
    guard.check_loss(1e9, 2.3, epoch=2, step=8)
    assert guard.divergence is first and guard.record_non_finite(NonFiniteLossError(2, 9, math.inf)) is first
    fresh = DivergenceGuard(Thresholds())
    assert fresh.record_non_finite(NonFiniteLossError(2, 9, math.inf)).epoch == 2
