"""Deliberately wrong ONNX artifacts for the parity-gate tests: each edit returns a new ``ModelProto``.

The input edits put one ``Gather`` in front of the graph that re-indexes the input ``video``
``(B, C, T, H, W)`` before any node reads it: channels reversed (an app feeding BGR), time
reversed, or one frame dropped and another duplicated. :func:`zeroed_tokens` zeroes the
Former's global tokens. The proto passed in is never modified.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _copy(proto: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    return out


def _input_dims(proto: onnx.ModelProto) -> list[int]:
    return [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]


def reindex_input(proto: onnx.ModelProto, axis: int, indices: list[int], tag: str) -> onnx.ModelProto:
    """A copy of ``proto`` whose nodes read ``Gather(video, indices, axis)`` instead of the input itself."""
    out = _copy(proto)
    graph = out.graph
    name = graph.input[0].name
    if len(indices) != _input_dims(proto)[axis]:
        raise ValueError(f"{tag}: {len(indices)} indices for an input axis of {_input_dims(proto)[axis]}")
    read, index_name = f"{name}_{tag}", f"{tag}_indices"
    for node in graph.node:
        node.input[:] = [read if i == name else i for i in node.input]
    graph.initializer.append(numpy_helper.from_array(np.asarray(indices, dtype=np.int64), index_name))
    graph.node.insert(0, helper.make_node("Gather", [name, index_name], [read], axis=axis, name=f"tamper_{tag}"))
    return out


def reversed_channels(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The graph reads its input with the colour channels reversed (RGB clip read as BGR)."""
    channels = _input_dims(proto)[1]
    return reindex_input(proto, 1, list(range(channels))[::-1], "bgr")


def reversed_time(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The graph reads its input's frames last to first."""
    frames = _input_dims(proto)[2]
    return reindex_input(proto, 2, list(range(frames))[::-1], "time_reversed")


def shifted_frames(proto: onnx.ModelProto, drop: int = 2, duplicate: int | None = None) -> onnx.ModelProto:
    """The graph drops frame ``drop`` and reads frame ``duplicate`` (default ``T − 3``) twice.

    Every frame between the two moves one position earlier, as when a decoder skips one frame
    and repeats a later one.
    """
    frames = _input_dims(proto)[2]
    duplicate = frames - 3 if duplicate is None else duplicate
    if not 0 <= drop < duplicate < frames:
        raise ValueError(f"shifted_frames needs 0 <= drop < duplicate < {frames}, got drop={drop}, "
                         f"duplicate={duplicate}")
    order = [t for t in range(frames) if t != drop]
    order.insert(order.index(duplicate), duplicate)
    return reindex_input(proto, 2, order, "frames_shifted")


def tokens_initializer(proto: onnx.ModelProto, num_tokens: int, token_dim: int) -> onnx.TensorProto:
    """The initializer holding the Former's global tokens: shape ``(1, …, num_tokens, token_dim)``.

    The exporter names it after the op it was folded into (``expand`` for the batch broadcast),
    so it is found by shape; a name containing ``tokens`` wins if several match. Raises
    ValueError unless exactly one candidate remains.
    """
    found = [t for t in proto.graph.initializer
             if list(t.dims)[-2:] == [num_tokens, token_dim] and all(d == 1 for d in list(t.dims)[:-2])]
    named = [t for t in found if "tokens" in t.name]
    found = named or found
    if len(found) != 1:
        raise ValueError(f"expected one initializer of shape (…, {num_tokens}, {token_dim}) holding the tokens, "
                         f"found {[t.name for t in found]}")
    return found[0]


def zeroed_tokens(proto: onnx.ModelProto, num_tokens: int, token_dim: int) -> onnx.ModelProto:
    """The graph's global tokens (the ``tokens`` parameter of ``VideoMobileFormer``) set to zero.

    Constant folding has already multiplied the tokens into the first Mobile→Former bridge's
    query and gate projections; those folded constants are left as they are, so this zeroes
    the tokens wherever the graph still reads them: the Former's residual stream from block 0 on.
    """
    out = _copy(proto)
    init = tokens_initializer(out, num_tokens, token_dim)
    init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), init.name))
    return out
