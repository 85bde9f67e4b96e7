"""ONNX export and import: ``rnnlab.onnx.export(model, "model.onnx")`` and ``rnnlab.onnx.load(path)``.

The graphs run in ONNX Runtime (CPU); see :mod:`rnnlab.io.onnx_export` for what maps to which operator,
the graph's inputs and outputs (batch-first at the edges, dynamic batch and time, the recurrent states
as optional inputs and outputs) and :mod:`rnnlab.io.onnx_import` for what ``load`` reads. Needs the
``onnx`` extra (``pip install 'rnnlab[onnx]'``), imported only when a function is called.
"""

from rnnlab.io.onnx_export import DEFAULT_OPSET, export, to_onnx
from rnnlab.io.onnx_import import load

__all__ = ["DEFAULT_OPSET", "export", "load", "to_onnx"]
