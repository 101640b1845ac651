"""Reference models and user model factories.

>>> from olmp.models import build_model
>>> model = build_model("lenet-300-100", (1, 28, 28), 10)
>>> sum(p.numel() for p in model.parameters())
266610
"""

from olmp.models.registry import (
    MODELS,
    ModelSpec,
    build_model,
    check_finite_weights,
    check_recorded_model,
    is_code_path,
    register_model,
    resolve_factory,
)

__all__ = [
    "MODELS",
    "ModelSpec",
    "build_model",
    "check_finite_weights",
    "check_recorded_model",
    "is_code_path",
    "register_model",
    "resolve_factory",
]
