"""Block outputs of an existing ONNX artifact (fp32 or int8 QDQ), aligned with the PyTorch blocks by value.

Fusion rewrites, onnxsim and the quantizer rename and reshape tensors, so a block's output is
found by what it holds (:func:`~vmf_deploy.numerics.taps.align_by_value`). On an fp32 artifact the
chosen tensor matches to float rounding (the tool prints its SQNR, so a wrong alignment shows); on
an int8 artifact it is the same tensor, quantized.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..export.targets import INPUT_NAME
from .taps import align_by_value


def _float_tensors(proto) -> list[tuple[str, int]]:  # noqa: ANN001 - onnx.ModelProto
    """``(name, element count)`` of every float intermediate tensor with a static shape, in graph order."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(proto)
    sizes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.output):
        tensor = value.type.tensor_type
        dims = [d.dim_value for d in tensor.shape.dim]
        if tensor.elem_type == onnx.TensorProto.FLOAT and dims and all(d > 0 for d in dims):
            sizes[value.name] = int(np.prod(dims))
    return [(out, sizes[out]) for node in proto.graph.node for out in node.output if out in sizes]


def onnx_block_outputs(path: Path, clip: np.ndarray, reference: dict[str, np.ndarray],
                       threads: int = 2) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``({block: output}, {block: tensor name})`` of the artifact at ``path`` on ``clip``, aligned with
    ``reference``."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    wanted = {ref.size for ref in reference.values()}
    candidates = [(name, size) for name, size in _float_tensors(proto) if size in wanted]
    existing = {o.name for o in proto.graph.output}
    proto.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name, _ in candidates if name not in existing)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(None, {INPUT_NAME: np.ascontiguousarray(clip, np.float32)})))

    return align_by_value(reference, [name for name, _ in candidates], values, proto.graph.output[0].name)
