"""Reference models. A user's own model is any callable taking ``in_shape`` and ``n_classes``."""

from __future__ import annotations

import math
from typing import Sequence

from torch import nn

__all__ = ["MLP", "CNN", "CNN1D"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


def _activation(name: str) -> type[nn.Module]:
    if name not in _ACTIVATIONS:
        raise ValueError(f"model.activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]


class MLP(nn.Sequential):
    """A fully connected net: flatten, then ``depth`` hidden layers of ``width`` units.

    Args:
        in_shape: shape of one sample; it is flattened.
        n_classes: number of output logits.
        width: units per hidden layer.
        depth: number of hidden layers (0 gives a linear classifier).
        dropout: dropout probability after each hidden activation.
        activation: ``relu``, ``tanh``, ``gelu`` or ``sigmoid``.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        n_classes: int,
        width: int = 128,
        depth: int = 2,
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        act = _activation(activation)
        layers: list[nn.Module] = [nn.Flatten()]
        n_in = math.prod(in_shape)
        for _ in range(depth):
            layers += [nn.Linear(n_in, width), act()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            n_in = width
        layers.append(nn.Linear(n_in, n_classes))
        super().__init__(*layers)


class CNN(nn.Sequential):
    """A small 2-D conv net: blocks of conv-activation-maxpool, then a classifier head.

    Args:
        in_shape: ``(channels, height, width)`` of one sample.
        n_classes: number of output logits.
        channels: output channels of each conv block; each block halves height and width.
        kernel_size: conv kernel size (odd; padding keeps the size before pooling).
        hidden: units of the hidden fully connected layer (0 for none).
        dropout: dropout probability before the head.
        activation: ``relu``, ``tanh``, ``gelu`` or ``sigmoid``.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        n_classes: int,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        hidden: int = 64,
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        if len(in_shape) != 3:
            raise ValueError(f"model: cnn needs samples of shape (C, H, W), got in_shape={tuple(in_shape)}")
        act = _activation(activation)
        c_in, height, width = in_shape
        layers: list[nn.Module] = []
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2), act(), nn.MaxPool2d(2)]
            c_in, height, width = c_out, height // 2, width // 2
        if height < 1 or width < 1:
            raise ValueError(f"model.channels: {len(channels)} pooling blocks shrink {tuple(in_shape)} below 1x1")
        layers.append(nn.Flatten())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = c_in * height * width
        if hidden > 0:
            layers += [nn.Linear(n_in, hidden), act()]
            n_in = hidden
        layers.append(nn.Linear(n_in, n_classes))
        super().__init__(*layers)


class CNN1D(nn.Sequential):
    """A small 1-D conv net for signals: strided conv-activation blocks, then a linear classifier.

    The defaults are the convolutional baseline of MNIST-1D (Greydanus 2020, ``ConvBase``): three
    convolutions of 25 channels with kernels 5, 3, 3, stride 2 and padding 1, ReLU, then one linear
    layer on the flattened features (on signals of length 40: 40 -> 19 -> 10 -> 5, 125 features).

    Args:
        in_shape: ``(channels, length)`` of one sample.
        n_classes: number of output logits.
        channels: output channels of each conv layer.
        kernel_sizes: kernel size of each conv layer (as many as ``channels``).
        stride: stride of every conv layer.
        padding: zero padding of every conv layer.
        activation: ``relu``, ``tanh``, ``gelu`` or ``sigmoid``.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        n_classes: int,
        channels: Sequence[int] = (25, 25, 25),
        kernel_sizes: Sequence[int] = (5, 3, 3),
        stride: int = 2,
        padding: int = 1,
        activation: str = "relu",
    ) -> None:
        if len(in_shape) != 2:
            raise ValueError(f"model: cnn1d needs samples of shape (C, L), got in_shape={tuple(in_shape)}")
        if len(kernel_sizes) != len(channels):
            raise ValueError(f"model.kernel_sizes must give one size per conv layer ({len(channels)}), "
                             f"got {list(kernel_sizes)}")
        act = _activation(activation)
        c_in, length = in_shape
        layers: list[nn.Module] = []
        for c_out, kernel in zip(channels, kernel_sizes):
            layers += [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=padding), act()]
            c_in, length = c_out, (length + 2 * padding - kernel) // stride + 1
            if length < 1:
                raise ValueError(f"model: the conv layers shrink a signal of length {in_shape[1]} below 1 "
                                 f"(channels {list(channels)}, kernel_sizes {list(kernel_sizes)}, stride {stride})")
        layers += [nn.Flatten(), nn.Linear(c_in * length, n_classes)]
        super().__init__(*layers)
