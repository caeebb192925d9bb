import functools

import pytest
import torch
from torch import nn

from practices.data import load_digits, split_indices, train_val
from practices.lr_range import classification_loss, lr_range_test
from practices.models import MLP


def _quadratic(curvature: float, noise: float = 0.1, batch_size: int = 32, seed: int = 0):
    """Least squares with inputs scaled so the loss's curvature is ``curvature``: gradient descent
    is stable exactly for lr < 2 / curvature."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(5.0)

    def loss(m, step):
        x = torch.randn(batch_size, 1, generator=generator)
        x = x / x.pow(2).mean().sqrt() * curvature**0.5  # E[x^2] = curvature exactly per batch
        y = 2.0 * x + noise * torch.randn(batch_size, 1, generator=generator)
        return 0.5 * (m(x) - y).pow(2).mean()

    return model, loss


@pytest.mark.parametrize("curvature", [0.5, 4.0, 50.0])
def test_lr_range_suggestion_lies_inside_the_stable_region(curvature):
    model, loss = _quadratic(curvature)
    result = lr_range_test(model, torch.optim.SGD, loss, lr_min=1e-5, lr_max=100.0, n_steps=300)
    assert result.diverged_lr is not None and result.diverged_lr > 2 / curvature * 0.9
    assert 0 < result.low < result.high < 2 / curvature
    assert result.high > 0.05 / curvature, "the range is not uselessly small"


def test_lr_range_leaves_the_model_untouched():
    model, loss = _quadratic(1.0)
    before = model.weight.detach().clone()
    lr_range_test(model, torch.optim.SGD, loss, n_steps=50)
    assert torch.equal(model.weight, before)


def test_lr_range_on_digits_suggests_a_range_that_trains():
    X, y = load_digits()
    data = train_val(X, y, split_indices(y, val_fraction=0.2, test_fraction=0.2, seed=0))
    torch.manual_seed(0)
    model = MLP(data.in_shape, data.n_classes, width=64)
    sgd = functools.partial(torch.optim.SGD, momentum=0.9)
    result = lr_range_test(model, sgd, classification_loss(data, 64, seed=0), lr_min=1e-4, lr_max=10.0, n_steps=150)
    assert 1e-4 < result.low < result.high < result.min_loss_lr
    assert result.diverged_lr is None or result.high < result.diverged_lr
    assert min(result.losses) < result.losses[0] * 0.75, "the loss fell inside the range"


def test_lr_range_rejects_bad_bounds():
    model, loss = _quadratic(1.0)
    with pytest.raises(ValueError, match="lr_min=1.0, lr_max=0.1"):
        lr_range_test(model, torch.optim.SGD, loss, lr_min=1.0, lr_max=0.1)
