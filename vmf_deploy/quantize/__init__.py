"""Post-training quantization: calibration clips, per-target int8 schemes and the per-layer numeric diff.

One module per target scheme (``onnx_qdq``: onnxruntime QDQ; ``pt2e_xnnpack``: torchao PT2E for
ExecuTorch's XNNPACK; ``coreml_weights``: Core ML weight-only compression), used by
``vmf-export --precision int8`` (``vmf_deploy.export.pipeline``). Heavy libraries are imported
inside the functions.
"""
