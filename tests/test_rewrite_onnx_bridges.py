"""ONNX bridge fusion (recipe ``bridges = "attention"``): every Mobile→Former / Former→Mobile bridge becomes one ``Attention`` node."""

from __future__ import annotations

import copy
import functools
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from onnx_helpers import WHOLE_MODEL_VARIANTS, OneBridge, export, rel_error, run

from vmf_deploy import build_seeded_model
from vmf_deploy.export import onnx_export
from vmf_deploy.models.layers import FormerToMobile, MobileToFormer
from vmf_deploy.rewrites import run_rewrites
from vmf_deploy.rewrites.onnx_bridge_attention import OnnxBridgeAttention, fuse_bridges

pytest.importorskip("onnxruntime")


def ops(proto: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in proto.graph.node)


@pytest.mark.parametrize("per_frame", [False, True], ids=["clip-tokens", "per-frame-tokens"])
@pytest.mark.parametrize("kind", [MobileToFormer, FormerToMobile], ids=lambda k: k.__name__)
def test_single_bridge_becomes_one_attention_node(kind: type, per_frame: bool) -> None:
    torch.manual_seed(0)
    frames = 4
    tokens = 6 * (frames if per_frame else 1)
    module = OneBridge(kind(32, 48, heads=2, per_frame=per_frame), tokens, 48).eval()
    proto = export(module, (1, 32, frames, 9, 7))
    fused, count = fuse_bridges(proto)
    assert count == 1
    assert ops(fused)["Attention"] == 1 and ops(fused)["Softmax"] == 0
    attention = next(n for n in fused.graph.node if n.op_type == "Attention")
    scale = next(a.f for a in attention.attribute if a.name == "scale")
    assert scale == pytest.approx(16 ** -0.5, rel=1e-7)  # the bridge's own scale, kept exactly
    onnx.checker.check_model(fused, full_check=True)
    x = np.random.default_rng(0).standard_normal((1, 32, frames, 9, 7)).astype(np.float32)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    assert rel_error(ref, run(fused, x)) <= 1e-5
    assert rel_error(run(proto, x), run(fused, x)) <= 1e-5


def test_a_graph_without_bridges_is_returned_unchanged() -> None:
    model = build_seeded_model("mobile3d-560m", frames=8, resolution=32).eval()
    proto = export(model, model.cfg.input_shape)
    result = OnnxBridgeAttention().apply(proto)
    assert result.count == 0 and result.obj is proto


@pytest.mark.parametrize("variant", WHOLE_MODEL_VARIANTS)
def test_whole_model_every_bridge_fused(variant: str, seeded_onnx) -> None:
    model, proto = seeded_onnx(variant)
    fused, count = fuse_bridges(proto)
    n_bridges = 2 * len(model.blocks) + 1  # two per block plus the head's
    assert count == n_bridges
    assert ops(fused)["Attention"] == n_bridges
    assert ops(fused)["Softmax"] == len(model.blocks)  # only the Formers' self-attention softmaxes remain
    assert ops(proto)["Softmax"] == len(model.blocks) + n_bridges
    onnx_export.check_onnx(fused)
    x = np.random.default_rng(1).standard_normal(model.cfg.input_shape).astype(np.float32)
    assert rel_error(run(proto, x), run(fused, x)) <= 1e-5


BRIDGE_COUNTS = {"channels-first": lambda blocks: {"onnx_bridge_channels_first": blocks},  # Former→Mobile only
                 "attention": lambda blocks: {"onnx_bridge_attention": 2 * blocks + 1}}


@functools.cache
def module_fused_export(variant: str) -> tuple[onnx.ModelProto, list[dict]]:
    """The seeded model (16 × 32²) after the ONNX module-stage rewrites, exported once for both bridge forms."""
    model = build_seeded_model(variant, frames=16, resolution=32).eval()
    rewritten, applied = run_rewrites("onnx", "module", model)
    return export(rewritten, model.cfg.input_shape), applied


@pytest.mark.parametrize("bridges", list(BRIDGE_COUNTS))
@pytest.mark.parametrize("variant", WHOLE_MODEL_VARIANTS)
def test_all_onnx_fusions_match_the_unfused_export(variant: str, bridges: str, seeded_onnx) -> None:
    """The export pipeline's two rewrite stages with fuse on vs off (vmf-export --no-fuse), each bridge form."""
    model, plain = seeded_onnx(variant)
    _, module_applied = run_rewrites("onnx", "module", copy.deepcopy(model), fuse=False)
    assert not any(a["count"] for a in module_applied)  # so the unfused export is the plain one
    exports = {False: (plain, module_applied), True: module_fused_export(variant)}
    x = np.random.default_rng(2).standard_normal(model.cfg.input_shape).astype(np.float32)
    outputs, applied = {}, {}
    for fuse, (exported, module_applied) in exports.items():
        proto, onnx_applied = run_rewrites("onnx", "onnx", onnx.ModelProto.FromString(exported.SerializeToString()),
                                           fuse=fuse, choices={"bridges": bridges})
        onnx_export.check_onnx(proto)
        applied[fuse] = {a["name"]: a["count"] for a in module_applied + onnx_applied}
        outputs[fuse] = run(proto, x)
    expected = {"stem_conv_fusion": 1, "dyrelu_fusion": 2 * len(model.blocks),
                "onnx_depthwise_conv2d": len(model.blocks),  # the fused stem has no depthwise conv left
                **BRIDGE_COUNTS[bridges](len(model.blocks))}
    assert applied[True].items() >= expected.items()
    other = {"channels-first": "onnx_bridge_attention", "attention": "onnx_bridge_channels_first"}[bridges]
    assert other not in applied[True]  # exactly one bridge form runs
    assert not any(applied[False].values())
    assert rel_error(outputs[False], outputs[True]) <= 1e-5
