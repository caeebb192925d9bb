"""Overfitting a tiny subset: healthy nets memorize it, a net that ignores its input cannot."""

import pytest
import torch
from torch import nn

from practices.checks import class_covering_subset, overfit_check
from practices.data import load_digits
from practices.models import CNN, MLP


class IgnoresInput(nn.Module):
    """Learned logits that do not depend on the sample."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_classes))

    def forward(self, x):
        return self.logits.expand(len(x), -1)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    return torch.from_numpy(X), torch.from_numpy(y)


def test_class_covering_subset_covers_every_class_first(digits):
    _, y = digits
    index = class_covering_subset(y, 10, seed=3)
    assert len(index) == 10 and len(set(index.tolist())) == 10
    assert sorted(y[index].tolist()) == list(range(10))
    index = class_covering_subset(y, 25, seed=3)
    assert torch.bincount(y[index], minlength=10).tolist().count(3) == 5  # 2 or 3 of each class
    assert torch.equal(class_covering_subset(y, 10, seed=3), class_covering_subset(y, 10, seed=3))


@pytest.mark.parametrize("make", [lambda: MLP((1, 8, 8), 10), lambda: CNN((1, 8, 8), 10)], ids=["mlp", "cnn"])
def test_overfit_check_healthy_nets_memorize_ten_samples(digits, make):
    for seed in range(5):
        torch.manual_seed(seed)
        model = make()
        before = [p.clone() for p in model.parameters()]
        result = overfit_check(model, *digits, seed=seed)
        assert result.passed, result.summary()
        assert result.value < 0.01 and result.details["n_correct"] == 10
        assert 0 < result.details["steps"] < 300
        assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "the check trains a copy"


def test_overfit_check_model_ignoring_its_input_fails(digits):
    result = overfit_check(IgnoresInput(), *digits)
    assert not result.passed
    assert result.details["steps"] == 300
    assert result.details["n_correct"] == 1  # one sample of each of 10 classes, one constant answer
    assert result.value == pytest.approx(2.3026, abs=0.01)  # stuck at ln(10): the best constant guess
    assert "depends on its input" in result.advice
