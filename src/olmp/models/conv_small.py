"""A small AlexNet-style CNN that trains on 28x28 images in minutes on a CPU."""

from __future__ import annotations

from torch import nn

from olmp.errors import OlmpError
from olmp.models.lenet import _image_shape


def conv_small(input_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10) -> nn.Module:
    """Three conv + ReLU + max-pool blocks (32, 64, 128 filters of 3x3), dropout, two hidden
    fully connected layers (256, 128) with ReLU and dropout, then the classifier."""
    channels, height, width = _image_shape(input_shape, "conv-small")
    side_h, side_w = height // 8, width // 8
    if side_h < 1 or side_w < 1:
        raise OlmpError(
            f"conv-small needs images of at least 8x8 pixels; got input shape {input_shape}"
        )

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(channels, 32),
        *block(32, 64),
        *block(64, 128),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(128 * side_h * side_w, 256),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )
