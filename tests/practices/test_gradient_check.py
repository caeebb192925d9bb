"""The gradient check: correct backwards pass, broken ones fail naming the parameter."""

import math

import pytest
import torch
from torch import nn

from practices.checks import gradient_check
from practices.data import load_digits
from practices.models import CNN, MLP
from tests.helpers import ScaledBackwardLinear


class CustomLinear(nn.Module):
    def __init__(self, n_in, n_out, factor=1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / math.sqrt(n_in))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.factor = factor

    def forward(self, x):
        return ScaledBackwardLinear.apply(x, self.weight, self.bias, self.factor)


class CustomNet(nn.Module):
    def __init__(self, factor=1.0):
        super().__init__()
        self.flatten = nn.Flatten()
        self.hidden = CustomLinear(64, 32, factor)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(self.flatten(x))))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    return torch.from_numpy(X), torch.from_numpy(y)


def test_gradient_check_custom_function_with_correct_backward_passes(digits):
    torch.manual_seed(0)
    result = gradient_check(CustomNet(), *digits)
    assert result.passed and result.name == "gradient"
    assert result.value < 1e-4 and result.threshold == 1e-4
    assert result.details["entries_checked"] > 0
    assert set(result.details["per_parameter"]) == {"hidden.weight", "hidden.bias", "out.weight", "out.bias"}


@pytest.mark.parametrize("factor", [2.0, 0.5, -1.0])
def test_gradient_check_broken_backward_fails_naming_the_parameter(digits, factor):
    torch.manual_seed(0)
    result = gradient_check(CustomNet(factor), *digits)
    assert not result.passed
    assert result.where == "hidden.weight"
    assert result.value > 1e-2
    # |a - n| / max(|a|, |n|) of a gradient scaled by the factor
    expected = abs(factor - 1) / max(abs(factor), 1)
    assert result.value == pytest.approx(expected, rel=1e-3)
    assert "hidden.weight" in result.advice
    assert result.details["per_parameter"]["out.weight"] < 1e-4


@pytest.mark.parametrize("make", [lambda: MLP((1, 8, 8), 10), lambda: CNN((1, 8, 8), 10)], ids=["mlp", "cnn"])
def test_gradient_check_relu_and_maxpool_nets_have_no_false_alarms_at_kinks(digits, make):
    for seed in range(5):
        torch.manual_seed(seed)
        result = gradient_check(make(), *digits, seed=seed, n_entries=20)
        assert result.passed, result.summary()
        assert result.value < 1e-5
        assert result.details["entries_checked"] >= 0.9 * (result.details["entries_checked"]
                                                            + result.details["entries_skipped_at_kinks"])


def test_gradient_check_skips_entries_straddling_a_kink(digits):
    # A large step makes kinks between w-h and w+h common: they are left out, not reported.
    torch.manual_seed(0)
    result = gradient_check(CNN((1, 8, 8), 10), *digits, step=1e-2)
    assert result.passed
    assert result.details["entries_skipped_at_kinks"] > 0


def test_gradient_check_leaves_the_model_untouched_and_uses_eval_mode(digits):
    torch.manual_seed(0)
    model = MLP((1, 8, 8), 10, dropout=0.5).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = gradient_check(model, *digits)
    assert result.passed  # dropout would make f(w+h) and f(w-h) disagree wildly
    assert model.training and next(model.parameters()).dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
