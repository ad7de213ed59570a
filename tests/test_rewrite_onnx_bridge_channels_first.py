"""ONNX bridges in the feature map's own layout: no transposed copy of the map on onnxruntime CPU."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from onnx_helpers import WHOLE_MODEL_VARIANTS, OneBridge, assert_rewrite_matches, export, rel_error, run

from vmf_deploy.export import onnx_export
from vmf_deploy.models.layers import FormerToMobile, MobileToFormer
from vmf_deploy.rewrites import unchosen_alternatives
from vmf_deploy.rewrites.onnx_bridge_channels_first import OnnxBridgeChannelsFirst, bridges_channels_first

pytest.importorskip("onnxruntime")

SHAPE = (1, 32, 4, 9, 7)  # a 32-channel map of 4 × 9 × 7 = 252 positions


def ops(proto: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in proto.graph.node)


def transpose_sizes(proto: onnx.ModelProto) -> dict[str, int]:
    """Every Transpose node's name → the number of elements it copies (from ONNX shape inference)."""
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    return {n.name: int(np.prod(shapes[n.input[0]])) for n in proto.graph.node if n.op_type == "Transpose"}


def map_view_transposes(proto: onnx.ModelProto, nodes: bool = False):
    """The Transposes of a reshaped 5D feature map (the bridges' copies of the map): their count, or the nodes."""
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*inferred.graph.value_info, *inferred.graph.input]}
    producer = {o: n for n in proto.graph.node for o in n.output}
    found = [n for n in proto.graph.node if n.op_type == "Transpose" and n.input[0] in producer
             and producer[n.input[0]].op_type == "Reshape" and ranks.get(producer[n.input[0]].input[0]) == 5]
    return found if nodes else len(found)


def single_bridge(kind: type, per_frame: bool = False) -> tuple[torch.nn.Module, onnx.ModelProto]:
    torch.manual_seed(0)
    tokens = 6 * (SHAPE[2] if per_frame else 1)
    module = OneBridge(kind(32, 48, heads=2, per_frame=per_frame), tokens, 48).eval()
    return module, export(module, SHAPE)


@pytest.mark.parametrize("per_frame", [False, True], ids=["clip-tokens", "per-frame-tokens"])
def test_former_to_mobile_never_transposes_the_map(per_frame: bool) -> None:
    module, proto = single_bridge(FormerToMobile, per_frame)

    def map_copies(graph: onnx.ModelProto) -> int:
        return sum(size >= int(np.prod(SHAPE)) for size in transpose_sizes(graph).values())

    rewritten, count = bridges_channels_first(proto)
    assert count == 1
    # the exported chain copies the map into queries and its output back; per-frame tokens also
    # move the frames into the batch and back (group_frames), which is the model's, not the bridge's
    assert map_copies(proto) == 2 + 2 * per_frame and map_copies(rewritten) == 2 * per_frame
    assert ops(rewritten)["Softmax"] == 0 and ops(rewritten)["ReduceMax"] == 1
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    assert_rewrite_matches(module, proto, rewritten, x)


def test_softmax_over_tokens_is_stable_for_large_scores() -> None:
    """The max subtraction is kept: scores of ±200 would overflow exp() without it."""
    module, _ = single_bridge(FormerToMobile)
    with torch.no_grad():
        module.bridge.to_k.weight.mul_(40.0)
    proto = export(module, SHAPE)
    rewritten, _ = bridges_channels_first(proto)
    x = 3.0 * np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    out = run(rewritten, x)
    assert np.isfinite(out).all() and rel_error(run(proto, x), out) <= 1e-5


def test_mobile_to_former_is_left_to_onnxruntime(tmp_path) -> None:
    """The exported Mobile→Former chain reads the map channels-first once onnxruntime fuses its one map transpose."""
    import onnxruntime as ort

    _, proto = single_bridge(MobileToFormer)
    result = OnnxBridgeChannelsFirst().apply(proto)
    assert result.count == 0 and result.obj is proto
    big = [name for name, size in transpose_sizes(proto).items() if size >= int(np.prod(SHAPE))]
    assert len(big) == 1  # Transpose(X) feeding softmax(q·X)·Xᵀ
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx"))
    assert big[0] not in {n.name for n in optimized.graph.node}
    fused = [n for n in optimized.graph.node if n.op_type == "FusedMatMul"]
    assert any(a.name == "transB" and a.i == 1 for n in fused for a in n.attribute)


def test_graph_below_opset_18_is_left_alone() -> None:
    _, proto = single_bridge(FormerToMobile)
    old = onnx.version_converter.convert_version(proto, 17)
    assert bridges_channels_first(old) == (old, 0)


def test_bridge_forms_are_alternatives() -> None:
    assert unchosen_alternatives() == {"onnx_bridge_attention"}
    assert unchosen_alternatives({"bridges": "attention"}) == {"onnx_bridge_channels_first"}
    with pytest.raises(ValueError, match="bridges = 'sdpa' is not one of 'channels-first', 'attention'"):
        unchosen_alternatives({"bridges": "sdpa"})


@pytest.mark.parametrize("variant", WHOLE_MODEL_VARIANTS)
def test_whole_model_every_former_to_mobile_rewritten(variant: str, seeded_onnx) -> None:
    model, proto = seeded_onnx(variant)
    rewritten, count = bridges_channels_first(proto)
    assert count == len(model.blocks)  # one Former→Mobile per block
    # left: the Formers' self-attention and every Mobile→Former (the blocks' and the head's)
    assert ops(rewritten)["Softmax"] == len(model.blocks) + len(model.blocks) + 1
    onnx_export.check_onnx(rewritten)
    assert map_view_transposes(proto) == 2 * len(model.blocks) + 1  # every bridge reads a transposed view
    assert map_view_transposes(rewritten) == len(model.blocks) + 1  # only the Mobile→Former ones
    consumers = {i: n for n in rewritten.graph.node for i in n.input}
    for node in map_view_transposes(rewritten, nodes=True):
        # left: Mobile→Former's Xᵀ, which onnxruntime fuses into FusedMatMul(transB) (no copy)
        reader = consumers[node.output[0]]
        assert reader.op_type == "MatMul" and reader.input[1] == node.output[0]
        assert list(next(a.ints for a in node.attribute if a.name == "perm")) == [0, 1, 3, 2]
    x = np.random.default_rng(1).standard_normal(model.cfg.input_shape).astype(np.float32)
    assert rel_error(run(proto, x), run(rewritten, x)) <= 1e-5


def test_fusion_report_steps_take_the_default_bridge_form() -> None:
    from vmf_deploy.rewrites.report import fusion_steps

    names = [c.name for c in fusion_steps("onnx")[1]]
    assert "onnx_bridge_channels_first" in names and "onnx_bridge_attention" not in names
