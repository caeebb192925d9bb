"""Optimizers with scalar hyperparameters."""

import pytest
import torch

from practices.optimizers import adam


def test_adam_maps_beta1_and_beta2_to_torch_betas():
    params = [torch.nn.Parameter(torch.zeros(3))]
    optimizer = adam(params, lr=0.01, beta1=0.8, beta2=0.95, weight_decay=0.1, decoupled_weight_decay=True)
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.Adam)
    assert group["betas"] == (0.8, 0.95) and group["lr"] == 0.01
    assert group["weight_decay"] == 0.1 and group["decoupled_weight_decay"] is True


def test_adam_steps_like_torch_adam_with_the_same_betas():
    torch.manual_seed(0)
    start = torch.randn(5)
    mine, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    ours, reference = adam([mine], lr=0.1, beta1=0.5, beta2=0.9), torch.optim.Adam([theirs], lr=0.1, betas=(0.5, 0.9))
    for _ in range(3):
        for p, opt in ((mine, ours), (theirs, reference)):
            opt.zero_grad()
            (p ** 2).sum().backward()
            opt.step()
    assert torch.equal(mine, theirs)


def test_adam_refuses_a_beta_outside_zero_one():
    with pytest.raises(ValueError, match="beta"):
        adam([torch.nn.Parameter(torch.zeros(1))], beta1=1.5)
