"""User model factories, imported by the tests as ``custom_models:...``."""

from torch import nn


def tiny_mlp(input_shape, num_classes):
    """A factory that takes the input shape and number of classes."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(int(input_shape[-1] * input_shape[-2]), num_classes)
    )


def fixed_digits_mlp():
    """A factory that takes no arguments (fits 8x8 digits only)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def not_a_module():
    return "oops"


def needs_width(input_shape, num_classes, width):
    """A factory with an argument olmp cannot give."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.Linear(width, num_classes))


def lazy_mlp():
    """A factory with a lazy layer: its weights are made at the first forward."""
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(32), nn.ReLU(), nn.Linear(32, 10))


def tabular_mlp(input_shape, num_classes):
    """A factory for tabular rows (a flat feature vector)."""
    return nn.Sequential(nn.Linear(input_shape[0], 8), nn.ReLU(), nn.Linear(8, num_classes))
