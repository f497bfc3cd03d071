"""`rnnsearch convert --from onnx`: an encoder graph and a decoder-step graph -> a model
directory (docs/convert-onnx.md).

    converter.py  options, loading, the analysis in order, writing (convert_onnx)
    graph.py      both graphs as one, run once on probe inputs
    affine.py     tensors as affine forms over the tensors where linear algebra stops
    encoder.py, cells.py, attention.py, decoder.py, bridge.py   the parts, read by formula
    verify.py, check.py   the converted model in NumPy, checked against the graphs
"""
from .converter import DESCRIPTION, add_arguments, convert, convert_onnx

__all__ = ["DESCRIPTION", "add_arguments", "convert", "convert_onnx"]
