"""Reference models: the 1-D conv net of MNIST-1D."""

import pytest
import torch

from practices.models import CNN1D


def test_cnn1d_gives_logits_per_sample():
    model = CNN1D((1, 40), 10)
    assert model(torch.randn(7, 1, 40)).shape == (7, 10)


def test_cnn1d_defaults_are_the_papers_convbase():
    model = CNN1D((1, 40), 10)
    convs = [m for m in model if isinstance(m, torch.nn.Conv1d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs] == [
        (25, 5, 2, 1), (25, 3, 2, 1), (25, 3, 2, 1)]
    assert model[-1].in_features == 125  # 40 -> 19 -> 10 -> 5 positions x 25 channels
    assert sum(p.numel() for p in model.parameters()) == 5210


def test_cnn1d_follows_the_input_length_and_channels():
    model = CNN1D((3, 64), 4, channels=[8, 16], kernel_sizes=[3, 3])
    assert model(torch.randn(2, 3, 64)).shape == (2, 4)


@pytest.mark.parametrize("kwargs, match", [
    ({"in_shape": (40,)}, "shape \\(C, L\\)"),
    ({"kernel_sizes": [5, 3]}, "model.kernel_sizes"),
    ({"in_shape": (1, 2)}, "below 1"),
])
def test_cnn1d_refuses_shapes_it_cannot_build(kwargs, match):
    args = {"in_shape": (1, 40), "n_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        CNN1D(**args)
