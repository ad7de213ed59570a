"""vmf_deploy.bench.artifact_bytes: every byte of an .onnx, .pte or OpenVINO IR goes to a (role, stored dtype) row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from benchmark_scripts import load_benchmark
from onnx import TensorProto, helper, numpy_helper
from xnnpack_int8 import quantized_program

from vmf_deploy.bench.artifact_bytes import (
    BIASES,
    CONV_WEIGHTS,
    DEPTHWISE_WEIGHTS,
    GRAPH,
    LINEAR_WEIGHTS,
    NORM_PARAMS,
    OTHER,
    SCALES,
    SHAPES,
    ZERO_POINTS,
    ArtifactBytes,
    ArtifactBytesError,
    artifact_bytes,
)

SHAPE = (1, 16, 8, 8)


def _rows(item: ArtifactBytes) -> dict[tuple[str, str], int]:
    return _rows_of(item, Path(item.path).stat().st_size)


def _rows_of(item: ArtifactBytes, size: int) -> dict[tuple[str, str], int]:
    """The rows by (role, dtype), once they are checked to add up to ``size``."""
    assert sum(r.bytes for r in item.rows) == item.file_bytes == size
    return {(r.role, r.dtype): r.bytes for r in item.rows}


def _qdq_onnx(path: Path) -> None:
    """A QDQ graph: an int8 conv, an fp32 depthwise conv, an fp32 matmul, a layer norm and a reshape."""
    rng = np.random.default_rng(0)

    def init(name: str, array: np.ndarray) -> TensorProto:
        return numpy_helper.from_array(array, name)

    inits = [
        init("w_q", rng.integers(-127, 127, (16, 16, 1, 1), dtype=np.int8)),
        init("w_scale", rng.random(16, dtype=np.float32)), init("w_zp", np.zeros(16, np.int8)),
        init("b", rng.random(16, dtype=np.float32)),
        init("x_scale", np.array(0.02, np.float32)), init("x_zp", np.array(128, np.uint8)),
        init("dw", rng.random((16, 1, 3, 3), dtype=np.float32)),
        init("ln_w", np.ones(8, np.float32)), init("ln_b", np.zeros(8, np.float32)),
        init("shape", np.array([1, 16, 64], np.int64)), init("fc", rng.random((64, 10), dtype=np.float32)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], axis=0),
        helper.make_node("Conv", ["xd", "w", "b"], ["c"]),
        helper.make_node("Conv", ["c", "dw"], ["d"], group=16, pads=[1, 1, 1, 1]),
        helper.make_node("LayerNormalization", ["d", "ln_w", "ln_b"], ["n"]),
        helper.make_node("Reshape", ["n", "shape"], ["r"]),
        helper.make_node("MatMul", ["r", "fc"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_onnx_tensors_take_their_role_through_dequantize_linear(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    _qdq_onnx(path)
    rows = _rows(artifact_bytes(path))
    model = onnx.load(str(path))
    size = {t.name: t.ByteSize() for t in model.graph.initializer}
    assert rows[CONV_WEIGHTS, "int8"] == size["w_q"]
    assert size["w_q"] >= 256  # the int8 values themselves, one byte each
    assert rows[DEPTHWISE_WEIGHTS, "float"] == size["dw"] >= 16 * 9 * 4
    assert rows[LINEAR_WEIGHTS, "float"] == size["fc"] >= 64 * 10 * 4
    assert rows[BIASES, "float"] == size["b"]
    assert rows[SCALES, "float"] == size["w_scale"] + size["x_scale"]
    assert rows[ZERO_POINTS, "int8"] + rows[ZERO_POINTS, "uint8"] == size["w_zp"] + size["x_zp"]
    assert rows[NORM_PARAMS, "float"] == size["ln_w"] + size["ln_b"]
    assert rows[SHAPES, "int64"] == size["shape"]
    assert 0 < rows[GRAPH, "protobuf"] < path.stat().st_size - sum(size.values()) + 64


def _openvino_ir(path: Path) -> None:
    """An IR with an int8-compressed conv, a bias, a FakeQuantize, an fp32 group conv, a norm, a reshape, a matmul."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([1, 16, 8, 8], np.float32, name="x")
    weights = ops.multiply(ops.convert(ops.constant(rng.integers(-127, 127, (16, 16, 1, 1)).astype(np.int8)), "f32"),
                           ops.constant(rng.random((16, 1, 1, 1)).astype(np.float32)))
    y = ops.add(ops.convolution(x, weights, [1, 1], [0, 0], [0, 0], [1, 1]),
                ops.constant(rng.random((1, 16, 1, 1)).astype(np.float32)))
    ranges = [ops.constant(np.float32(v)) for v in (-1, 1, -1.5, 1.5)]
    y = ops.fake_quantize(y, *ranges, 256)
    y = ops.group_convolution(y, ops.constant(rng.random((16, 1, 1, 3, 3)).astype(np.float32)), [1, 1], [1, 1],
                              [1, 1], [1, 1])
    y = ops.mvn(y, ops.constant(np.array([1, 2, 3], np.int64)), True, 1e-5, "inside_sqrt")
    y = ops.add(ops.multiply(y, ops.constant(np.ones((1, 16, 1, 1), np.float32))),
                ops.constant(np.zeros((1, 16, 1, 1), np.float32)))
    y = ops.reshape(y, ops.constant(np.array([1, 16, 64], np.int64)), False)
    y = ops.matmul(y, ops.constant(rng.random((64, 10)).astype(np.float32)), False, False)
    ov.save_model(ov.Model([y], [x], "bytes"), str(path), compress_to_fp16=False)


def test_openvino_constants_take_their_role_through_the_decompression_chain(tmp_path: Path) -> None:
    path = tmp_path / "m.xml"
    _openvino_ir(path)
    item = artifact_bytes(path)
    assert item.file_bytes == path.stat().st_size + path.with_suffix(".bin").stat().st_size
    rows = _rows_of(item, path.stat().st_size + path.with_suffix(".bin").stat().st_size)
    assert rows[CONV_WEIGHTS, "i8"] == 16 * 16 and rows[DEPTHWISE_WEIGHTS, "f32"] == 16 * 9 * 4
    assert rows[LINEAR_WEIGHTS, "f32"] == 64 * 10 * 4 and rows[BIASES, "f32"] == 16 * 4
    assert rows[SCALES, "f32"] == 16 * 4 + 4 * 4  # the weights' per-channel scales, the FakeQuantize's four ranges
    assert rows[NORM_PARAMS, "f32"] == 2 * 16 * 4 and rows[SHAPES, "i64"] == (3 + 3) * 8
    assert rows[GRAPH, "IR .xml"] == path.stat().st_size and rows[GRAPH, ".bin bytes no constant reads"] == 0


class Net(torch.nn.Module):
    """A dense conv, a depthwise conv, a kept coefficient MLP and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(16, 16, 1)
        self.depthwise = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.gate = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16))
        self.classifier = torch.nn.Linear(16, 400)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.depthwise(torch.relu(self.conv(x))))
        pooled = y.mean((2, 3))
        return self.classifier(pooled * torch.sigmoid(self.gate(pooled)))


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> tuple[Path, Path]:
    """Net lowered to XNNPACK in fp32, and int8 with the gate kept fp32 and the classifier weight-only int8."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    torch.manual_seed(0)
    model = Net().eval()
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(8)]
    example = torch.from_numpy(clips[0])
    folder = tmp_path_factory.mktemp("artifact-bytes")
    fp32 = folder / "fp32.pte"
    fp32.write_bytes(to_edge_transform_and_lower(torch.export.export(model, (example,)),
                                                 partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
    options = {"per_channel": True, "calibration_method": "minmax", "fp32_modules": ["Sequential"],
               "fp32_outputs": True, "kept_linears": "fp32", "fp32_output_weights": "int8"}
    _, pte = quantized_program(model, clips, options, ("aten.convolution", "aten.linear"))
    int8 = folder / "int8.pte"
    int8.write_bytes(pte)
    return fp32, int8


def test_pte_weights_are_counted_at_their_stored_width(programs: tuple[Path, Path]) -> None:
    fp32, int8 = (_rows(artifact_bytes(p)) for p in programs)
    gate, classifier = 16 * 64 + 64 * 16, 16 * 400
    assert fp32[CONV_WEIGHTS, "fp32"] == 16 * 16 * 4 and fp32[DEPTHWISE_WEIGHTS, "fp32"] == 16 * 9 * 4
    assert fp32[LINEAR_WEIGHTS, "fp32"] == (gate + classifier) * 4
    assert fp32[BIASES, "fp32"] == (16 + 16 + 64 + 16 + 400) * 4
    assert int8[CONV_WEIGHTS, "int8"] == 16 * 16 and int8[DEPTHWISE_WEIGHTS, "int8"] == 16 * 9
    assert int8[LINEAR_WEIGHTS, "int8"] == classifier and int8[LINEAR_WEIGHTS, "fp32"] == gate * 4
    assert int8[SCALES, "fp32"] >= (16 + 16 + 400) * 4  # one per output channel of each per-channel weight
    assert fp32[GRAPH, "XNNPACK flatbuffer"] > 0 and int8[GRAPH, "program flatbuffer, headers, padding"] > 0


def test_a_delegate_of_another_backend_is_counted_whole(tmp_path: Path) -> None:
    from executorch.exir import to_edge
    from executorch.exir.backend.test.op_partitioner_demo import AddMulPartitionerDemo

    class AddMul(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a * b + a

    example = (torch.ones(2, 2), torch.ones(2, 2))
    edge = to_edge(torch.export.export(AddMul(), example)).to_backend(AddMulPartitionerDemo())
    path = tmp_path / "demo.pte"
    path.write_bytes(edge.to_executorch().buffer)
    rows = _rows(artifact_bytes(path))
    assert rows[OTHER, "BackendWithCompilerDemo payload"] > 0 and not any(dtype == "XNNPACK flatbuffer"
                                                                           for _, dtype in rows)


def test_unreadable_artifacts_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ArtifactBytesError, match="no such file"):
        artifact_bytes(tmp_path / "missing.pte")
    (tmp_path / "model.tflite").write_bytes(b"\0" * 16)
    with pytest.raises(ArtifactBytesError, match=r"\.tflite file; pass an \.onnx, a \.pte or an OpenVINO \.xml"):
        artifact_bytes(tmp_path / "model.tflite")
    (tmp_path / "broken.pte").write_bytes(b"not a program" * 8)
    with pytest.raises(ArtifactBytesError, match="not a readable ExecuTorch program"):
        artifact_bytes(tmp_path / "broken.pte")
    (tmp_path / "broken.onnx").write_bytes(b"\xff" * 64)
    with pytest.raises(ArtifactBytesError, match="not a readable ONNX model"):
        artifact_bytes(tmp_path / "broken.onnx")
    (tmp_path / "page.xml").write_text("<html><body/></html>")
    with pytest.raises(ArtifactBytesError, match="not an OpenVINO IR"):
        artifact_bytes(tmp_path / "page.xml")


def test_the_script_compares_each_artifact_with_the_first_of_its_format(programs: tuple[Path, Path], tmp_path: Path,
                                                                         capsys) -> None:
    script = load_benchmark("artifact_bytes")
    out = tmp_path / "bytes.json"
    fp32, int8 = programs
    _qdq_onnx(tmp_path / "m.onnx")
    assert script.main(["--artifacts", f"fp32={fp32}", f"onnx={tmp_path / 'm.onnx'}", f"int8={int8}",
                        "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["references"] == {"pte": "fp32", "onnx": "onnx"}
    assert doc["artifacts"]["fp32"]["summary"] is None and doc["artifacts"]["onnx"]["summary"] is None
    summary = doc["artifacts"]["int8"]["summary"]
    assert summary["against"] == "fp32"
    assert summary["smaller"] == pytest.approx(fp32.stat().st_size / int8.stat().st_size)
    assert summary["float_weight_bytes"] == (16 * 64 + 64 * 16) * 4
    weights = (16 * 16 + 16 * 9 + 16 * 64 + 64 * 16 + 16 * 400) * 4
    assert summary["ceiling_smaller"] == pytest.approx(
        fp32.stat().st_size / (weights / 4 + summary["non_weight_bytes"]))
    assert summary["ceiling_smaller"] > summary["smaller"]  # the kept fp32 gate is what the ceiling removes
    printed = capsys.readouterr().out
    assert "int8.pte" in printed and "ceiling" in printed
    with pytest.raises(SystemExit, match="NAME=PATH"):
        script.main(["--artifacts", str(fp32)])
