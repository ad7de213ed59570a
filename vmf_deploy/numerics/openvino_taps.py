"""Block outputs of an OpenVINO IR (fp32, fp16 or int8), aligned with the PyTorch blocks by value.

The IR is read as it is, every float op output whose element count is a block output's becomes an
extra model output (``Model.add_outputs``), and the model is compiled for the CPU with the compile
options the export saved in it. The IR keeps the ONNX graph's channels-first tensors, so the blocks
are found as in an ONNX artifact (:func:`~vmf_deploy.numerics.taps.align_by_value`). An fp16 IR holds
fp16 weights; the export saves ``INFERENCE_PRECISION_HINT = f32`` in every IR, so they are computed
with in fp32 here as in the parity gate, bf16-capable CPUs included. An int8 IR's tensors are the
ones after its FakeQuantize ops.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .taps import LOGITS, align_by_value

SKIPPED_OPS = frozenset({"Parameter", "Constant", "Result", "Convert", "ShapeOf"})
"""Ops whose outputs are never a block's: inputs, weights, their fp16 → fp32 conversions, shapes."""


def openvino_block_outputs(path: Path, clip: np.ndarray, reference: dict[str, np.ndarray],
                           threads: int = 2) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``({block: output}, {block: op output name})`` of the IR at ``path`` on ``clip``, aligned with ``reference``."""
    import openvino as ov

    from ..preprocess import to_layout
    from ..runners.openvino_cpu import compile_options, input_layout

    core = ov.Core()
    model = core.read_model(str(path))
    wanted = {ref.size for block, ref in reference.items() if block != LOGITS}  # the logits are the IR's output
    floats = {ov.Type.f32, ov.Type.f16}
    candidates = [output for op in model.get_ordered_ops() if op.get_type_name() not in SKIPPED_OPS
                  for output in op.outputs()
                  if output.get_element_type() in floats and output.get_partial_shape().is_static
                  and math.prod(output.get_partial_shape().to_shape()) in wanted]
    names = [f"{output.get_node().get_friendly_name()}:{output.get_index()}" for output in candidates]
    model.add_outputs(candidates)
    config = {**compile_options(model), "INFERENCE_NUM_THREADS": str(threads)}
    compiled = core.compile_model(model, "CPU", config)
    results = compiled.create_infer_request().infer({0: to_layout(np.ascontiguousarray(clip, np.float32),
                                                                  input_layout(model))})
    arrays = [np.asarray(results[output]) for output in compiled.outputs]
    if len(arrays) != len(names) + 1:
        raise ValueError(f"{path.name}: OpenVINO returned {len(arrays)} outputs for the logits and {len(names)} "
                         "tapped tensors; the IR already has more than one output")
    values = {LOGITS: arrays[0], **dict(zip(names, arrays[1:], strict=True))}
    return align_by_value(reference, names, values, LOGITS)
