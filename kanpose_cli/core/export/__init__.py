"""Export of a pose model to ONNX, TorchScript and TensorRT, with parity checks against the torch model.

Layer: see :mod:`kanpose_cli.core.export.exporter`.
"""
