"""ONNX export of a network, checked against PyTorch with onnxruntime.

Needs the optional extra: ``pip install 'olmp[onnx]'`` (onnx, onnxscript, onnxruntime).
ONNX has no sparse weight storage that runtimes use, so the file holds the pruned weights
dense (zeros included); use ``olmp export --out`` for a small file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from olmp.errors import OlmpError
from olmp.files import atomic_path, refuse_to_overwrite

# Largest |onnxruntime - PyTorch| difference of a logit accepted, relative to the logits'
# scale: float32 kernels differ in summation order, never by more than this.
RELATIVE_TOLERANCE = 1e-4


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (missing torchvision ops, deprecations)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise OlmpError(
            "ONNX export needs the optional extra: pip install 'olmp[onnx]' "
            "(onnx, onnxscript, onnxruntime)"
        ) from None
    return onnxruntime


def export_onnx(
    model: nn.Module,
    inputs: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
) -> dict[str, Any]:
    """Write ``model`` as ONNX to ``path`` and check it on ``inputs`` with onnxruntime.

    ``inputs`` is a batch of real inputs (for example test images); the batch dimension is
    exported as dynamic. The file is written only when onnxruntime's logits match
    PyTorch's (within ``RELATIVE_TOLERANCE`` of their scale) and every predicted class
    agrees. Returns the check's numbers.
    """
    refuse_to_overwrite(path, force)
    runtime = _import_onnxruntime()
    model = model.eval().cpu()
    inputs = inputs.detach().cpu().float()
    with torch.inference_mode():
        expected = model(inputs).numpy()
    with atomic_path(path) as tmp, _quiet_exporter():
        program = torch.onnx.export(
            model,
            (inputs[:2],),
            dynamo=True,
            verbose=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
        program.save(str(tmp))
        session = runtime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": inputs.numpy()})[0]
        scale = float(abs(expected).max()) or 1.0
        max_diff = float(abs(got - expected).max())
        agree = float((got.argmax(1) == expected.argmax(1)).mean())
        if max_diff > RELATIVE_TOLERANCE * scale or agree < 1.0:
            raise OlmpError(
                f"the ONNX model disagrees with PyTorch on {len(inputs)} inputs (largest logit "
                f"difference {max_diff:.3g}, predictions agreeing {agree:.2%}); nothing written"
            )
    return {
        "onnx_file": str(path),
        "onnx_bytes": os.path.getsize(path),
        "checked_inputs": len(inputs),
        "max_logit_difference": max_diff,
        "prediction_agreement": agree,
        "onnxruntime": runtime.__version__,
    }
