"""Taking a trained model out: ONNX / torch.export export with checked parity (``export``), an
onnxruntime classifier that needs only numpy and onnxruntime (``onnx_runtime``), whole-video
timelines over a streamed decode (``timeline``) and pooled-embedding extraction (``features``).

Modules are imported on use: ``onnx_runtime`` must stay importable without torch.
"""
