"""Export of a pose model to ONNX, TorchScript and TensorRT, with parity checks against the torch model.

Layer: below inference (its onnxruntime backend exports with :func:`~kanpose_cli.core.export.exporter.export_onnx`),
above models, weights, data and detect. See :mod:`kanpose_cli.core.export.exporter`.
"""
