"""Loss at initialization against guessing: ln(C) for balanced classes."""

import math

import pytest
import torch

from practices.checks import guessing_losses, init_loss_check
from practices.data import load_digits
from practices.models import CNN, MLP


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    return torch.from_numpy(X), torch.from_numpy(y)


def _large_last_layer(scale):
    def make():
        model = MLP((1, 8, 8), 10)
        with torch.no_grad():
            model[-1].weight.mul_(scale)
        return model
    return make


def test_guessing_losses_are_prior_entropy_and_ln_c():
    assert guessing_losses(torch.tensor([0, 1, 2, 3]), 4) == pytest.approx((math.log(4), math.log(4)))
    entropy, uniform = guessing_losses(torch.tensor([0, 0, 0, 1]), 2)
    assert entropy == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert uniform == pytest.approx(math.log(2))


@pytest.mark.parametrize("make", [lambda: MLP((1, 8, 8), 10), lambda: CNN((1, 8, 8), 10)], ids=["mlp", "cnn"])
def test_init_loss_check_healthy_nets_are_near_ln_c(digits, make):
    for seed in range(5):
        result = init_loss_check(make, *digits, seed=seed)
        assert result.passed, result.summary()
        assert result.value == pytest.approx(math.log(10), rel=0.02)
        assert len(result.details["losses"]) == 3


def test_init_loss_check_large_last_layer_fails_reporting_loss_and_ln_c(digits):
    result = init_loss_check(_large_last_layer(30.0), *digits)
    assert not result.passed
    assert result.value > 1.5 * math.log(10)
    assert result.details["ln_C"] == pytest.approx(math.log(10))
    assert result.threshold == 0.1
    assert result.where == "5 (Linear)"
    assert f"{result.value:.4g}" in result.advice and "2.303" in result.advice


def test_init_loss_check_repeats_over_fresh_initializations(digits):
    result = init_loss_check(lambda: MLP((1, 8, 8), 10), *digits, n_inits=4)
    losses = result.details["losses"]
    assert len(set(losses)) == 4
    assert result.value == pytest.approx(sum(losses) / 4)
