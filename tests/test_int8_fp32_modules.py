"""The int8 recipes' ``fp32_modules`` take module paths of the reference model as well as class names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vmf_deploy.export.recipes import load_recipe
from vmf_deploy.export.targets import INPUT_NAME, get_target
from vmf_deploy.quantize.onnx_modules import kept_module
from vmf_deploy.quantize.onnx_qdq import fp32_nodes, quantize_onnx
from vmf_deploy.quantize.pt2e_xnnpack import fp32_module_paths

SHAPE = (1, 3, 2, 6, 6)
CLASSES = {"": "Net", "blocks": "ModuleList", "blocks.0": "VMFBlock", "blocks.0.mobile": "MobileBlock",
           "blocks.0.mobile.expand": "Conv3d", "blocks.0.mobile.act1": "FrameDyReLU",
           "blocks.0.mobile.dw": "Conv3d", "blocks.1": "VMFBlock", "blocks.1.mobile": "MobileBlock",
           "blocks.1.mobile.expand": "Conv3d"}


def _two_blocks(path: Path) -> Path:
    """Three convs whose weights carry the reference model's state-dict names, as vmf-export's graphs do."""
    rng = np.random.default_rng(0)
    weights = {"blocks.0.mobile.expand.weight": rng.standard_normal((8, 3, 1, 1, 1)).astype(np.float32),
               "blocks.0.mobile.dw.weight": rng.standard_normal((8, 1, 1, 3, 3)).astype(np.float32),
               "blocks.1.mobile.expand.weight": rng.standard_normal((4, 8, 1, 1, 1)).astype(np.float32)}
    nodes = [
        helper.make_node("Conv", [INPUT_NAME, "blocks.0.mobile.expand.weight"], ["a"], name="expand0"),
        helper.make_node("Relu", ["a"], ["b"], name="relu0"),
        helper.make_node("Conv", ["b", "blocks.0.mobile.dw.weight"], ["c"], name="dw0", group=8,
                         pads=[0, 1, 1, 0, 1, 1]),
        helper.make_node("Conv", ["c", "blocks.1.mobile.expand.weight"], ["out"], name="expand1"),
    ]
    graph = helper.make_graph(
        nodes, "net", [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, *SHAPE[2:]])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def test_a_path_keeps_that_module_and_what_is_inside_it() -> None:
    act = "blocks.0.mobile.act1.fc1"  # a Linear of the DyReLU: not itself in CLASSES, its parent is
    assert kept_module(act, CLASSES, {"FrameDyReLU"}) == "FrameDyReLU"
    assert kept_module(act, CLASSES, {"blocks.0"}) == "blocks.0"
    assert kept_module(act, CLASSES, {"blocks.0", "FrameDyReLU"}) == "FrameDyReLU"  # innermost first
    assert kept_module(act, CLASSES, {"blocks.1"}) is None
    assert kept_module("blocks.1.mobile.expand", CLASSES, {"blocks.1.mobile"}) == "blocks.1.mobile"
    assert kept_module("blocks.10.mobile", {**CLASSES, "blocks.10": "VMFBlock"}, {"blocks.1"}) is None  # not a prefix
    assert fp32_module_paths(CLASSES, ["blocks.0.mobile", "FrameDyReLU"]) == ["blocks.0.mobile"]  # outermost only
    assert fp32_module_paths(CLASSES, ["blocks.0.mobile.dw", "blocks.1"]) == ["blocks.0.mobile.dw", "blocks.1"]


def test_onnx_int8_leaves_the_named_paths_fp32(tmp_path: Path) -> None:
    proto = onnx.load(str(_two_blocks(tmp_path / "fp32.onnx")))
    options = {**load_recipe(get_target("onnx")).quantization, "fp32_modules": ["blocks.0.mobile.dw"],
               "fp32_outputs": False, "fp32_op_types": []}
    assert fp32_nodes(proto, options, CLASSES) == {"dw0": "inside blocks.0.mobile.dw"}
    options["fp32_modules"] = ["blocks.0"]
    assert set(fp32_nodes(proto, options, CLASSES)) == {"expand0", "relu0", "dw0"}
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(4)]
    summary = quantize_onnx(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", clips, options, CLASSES, tmp_path)
    assert summary["fp32_nodes"] == {"inside blocks.0": 3}
    assert summary["by_op"]["Conv"] == {"int8": 1, "weight_only": 0, "fp32": 2}
