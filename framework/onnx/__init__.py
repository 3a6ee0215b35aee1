"""`framework.onnx` (as torch.onnx): export a module to an ONNX file by tracing one forward
pass, for deployment with onnxruntime or any other ONNX runtime.

    framework.onnx.export(model, framework.randn(1, 3, 224, 224), "model.onnx",
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})

The `onnx` package is an optional dependency (pip install 'lantern[onnx]'): this module
imports without it, and `export` says how to install it. See docs/differences.md ("ONNX
export") for the supported ops and what differs from PyTorch's exporter.
"""
from __future__ import annotations

from ._export import OnnxExporterError, UnsupportedOperatorError, export
from ._trace import current as _current

__all__ = ["export", "is_in_onnx_export", "OnnxExporterError", "UnsupportedOperatorError"]


def is_in_onnx_export() -> bool:
    """True while `export` is running the model's forward."""
    return _current() is not None
