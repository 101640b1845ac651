"""The two LeNets of the OLMP paper, as defined in Caffe's examples."""

from __future__ import annotations

import math

from torch import nn

from olmp.errors import OlmpError


def lenet_300_100(input_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10) -> nn.Module:
    """LeNet-300-100: a 784-300-100-10 perceptron with ReLU (266,610 parameters on MNIST)."""
    in_features = math.prod(input_shape)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, 300),
        nn.ReLU(),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.Linear(100, num_classes),
    )


def lenet_5(input_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10) -> nn.Module:
    """LeNet-5 in Caffe's form (431,080 parameters on MNIST).

    conv 20 @ 5x5 -> max-pool 2x2 -> conv 50 @ 5x5 -> max-pool 2x2 (no ReLU after either
    convolution, as in Caffe's ``lenet_train_test.prototxt``) -> fc 500 + ReLU -> fc 10.
    """
    channels, height, width = _image_shape(input_shape, "lenet-5")
    side_h, side_w = (height - 4) // 2, (width - 4) // 2
    side_h, side_w = (side_h - 4) // 2, (side_w - 4) // 2
    if side_h < 1 or side_w < 1:
        raise OlmpError(
            f"lenet-5 needs images of at least 16x16 pixels; got input shape {input_shape}"
        )
    return nn.Sequential(
        nn.Conv2d(channels, 20, kernel_size=5),
        nn.MaxPool2d(2),
        nn.Conv2d(20, 50, kernel_size=5),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(50 * side_h * side_w, 500),
        nn.ReLU(),
        nn.Linear(500, num_classes),
    )


def _image_shape(input_shape: tuple[int, ...], model: str) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise OlmpError(
            f"{model} needs image input of shape (channels, height, width); got {input_shape}"
        )
    channels, height, width = input_shape
    return channels, height, width
