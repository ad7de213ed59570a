"""Where an artifact's bytes go: weights, biases, scales and graph, by stored dtype.

An int8 artifact is "about 4× smaller" only where int8 weights are nearly all of it. This module
reads an ``.onnx``, an ExecuTorch ``.pte`` or an OpenVINO IR (``.xml`` and its ``.bin``) and
attributes every byte to one row of (role, stored dtype): conv and linear weights, biases,
quantization scales and zero points, other constants, and the graph itself (the ONNX protobuf around
the tensors; the ``.pte``'s program and XNNPACK graph flatbuffers, headers and alignment padding;
the IR's ``.xml`` and any ``.bin`` bytes no constant reads). The rows add up to the artifact's size.

ONNX tensors take their role from the node that reads them, through a ``DequantizeLinear`` where
there is one; IR constants likewise, through the ``Convert``/``Subtract``/``Multiply`` chain that
decompresses int8 weights. A ``.pte``'s XNNPACK payloads are read with ExecuTorch's own schema and
``flatc``; their constants, stored once per content in the program's named data, take their role
from the XNNPACK node that reads them.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

CONV_WEIGHTS = "conv weights"
DEPTHWISE_WEIGHTS = "depthwise conv weights"
LINEAR_WEIGHTS = "linear weights"
BIASES = "biases"
NORM_PARAMS = "normalization parameters"
SCALES = "quantization scales"
ZERO_POINTS = "quantization zero points"
SHAPES = "shape constants"
OTHER = "other constants"
GRAPH = "graph"
WEIGHT_ROLES = (CONV_WEIGHTS, DEPTHWISE_WEIGHTS, LINEAR_WEIGHTS)


class ArtifactBytesError(ValueError):
    """The file is not an artifact this module can read."""


@dataclass(frozen=True)
class ByteRow:
    """Bytes of one (role, dtype) of an artifact, and how many tensors hold them."""

    role: str
    dtype: str
    tensors: int
    bytes: int


@dataclass(frozen=True)
class ArtifactBytes:
    """An artifact's file size and the rows it divides into (they sum to ``file_bytes``)."""

    path: str
    format: str
    file_bytes: int
    rows: tuple[ByteRow, ...]

    def role_bytes(self, *roles: str) -> int:
        """Bytes of the rows with any of ``roles``."""
        return sum(r.bytes for r in self.rows if r.role in roles)

    def dtype_bytes(self, *dtypes: str, roles: tuple[str, ...] | None = None) -> int:
        """Bytes stored as any of ``dtypes`` (within ``roles`` where given)."""
        return sum(r.bytes for r in self.rows if r.dtype in dtypes and (roles is None or r.role in roles))

    def to_dict(self) -> dict:
        """A JSON-ready record."""
        return {"path": self.path, "format": self.format, "file_bytes": self.file_bytes,
                "rows": [asdict(r) for r in self.rows]}


class _Tally:
    """Sums bytes and tensor counts per (role, dtype)."""

    def __init__(self) -> None:
        self._bytes: dict[tuple[str, str], int] = defaultdict(int)
        self._tensors: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, role: str, dtype: str, nbytes: int, tensors: int = 1) -> None:
        self._bytes[role, dtype] += nbytes
        self._tensors[role, dtype] += tensors

    def rows(self) -> tuple[ByteRow, ...]:
        keys = sorted(self._bytes, key=lambda k: (-self._bytes[k], k))
        return tuple(ByteRow(role, dtype, self._tensors[role, dtype], self._bytes[role, dtype]) for role, dtype in keys)


def artifact_bytes(path: Path) -> ArtifactBytes:
    """Attribute every byte of the ``.onnx``, ``.pte`` or OpenVINO ``.xml`` (with its ``.bin``) at ``path`` to a
    (role, stored dtype) row."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactBytesError(f"{path}: no such file; pass an exported .onnx, .pte or OpenVINO .xml")
    readers = {".onnx": _onnx_bytes, ".pte": _pte_bytes, ".xml": _openvino_bytes}
    if path.suffix not in readers:
        raise ArtifactBytesError(f"{path}: cannot break down a {path.suffix or 'suffix-less'} file; "
                                 f"pass an .onnx, a .pte or an OpenVINO .xml")
    return readers[path.suffix](path)


def _onnx_role(consumers: list[tuple[object, int]], nodes_by_output: dict) -> str:
    """The role of a tensor from the (node, input index) pairs that read it."""
    for node, index in consumers:
        op = node.op_type
        if op in ("DequantizeLinear", "QuantizeLinear") and index == 1:
            return SCALES
        if op in ("DequantizeLinear", "QuantizeLinear") and index == 2:
            return ZERO_POINTS
        if op == "DequantizeLinear":
            return _onnx_role(nodes_by_output.get(node.output[0], []), nodes_by_output)
        if op in ("Conv", "ConvInteger") and index == 1:
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            return DEPTHWISE_WEIGHTS if group > 1 else CONV_WEIGHTS
        if op in ("Conv", "Gemm") and index == 2:
            return BIASES
        if op in ("MatMul", "Gemm", "MatMulInteger") and index in (0, 1):
            return LINEAR_WEIGHTS
        if op in ("LayerNormalization", "BatchNormalization", "InstanceNormalization") and index >= 1:
            return NORM_PARAMS
        if op in ("Reshape", "Unsqueeze", "Squeeze", "ReduceMean", "ReduceSum", "ReduceMax", "Gather", "Expand",
                  "Slice", "Tile") and index >= 1:
            return SHAPES
    return OTHER


def _onnx_bytes(path: Path) -> ArtifactBytes:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ArtifactBytesError(f"{path}: not a readable ONNX model ({e}); re-export it") from None
    graph = model.graph
    readers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for index, name in enumerate(node.input):
            readers[name].append((node, index))
    tally = _Tally()
    for tensor in graph.initializer:
        dtype = onnx.TensorProto.DataType.Name(tensor.data_type).lower()
        role = _onnx_role(readers.get(tensor.name, []), readers)
        if role == ZERO_POINTS and not tensor.raw_data and dtype != "float":
            dtype += " (as varints)"
        tally.add(role, dtype, tensor.ByteSize())
    file_bytes = path.stat().st_size
    external = sum(p.stat().st_size for p in _onnx_external_files(model, path))
    tally.add(GRAPH, "protobuf", file_bytes - sum(t.ByteSize() for t in graph.initializer), tensors=0)
    if external:
        tally.add(OTHER, "external data", external, tensors=0)
    return ArtifactBytes(str(path), "onnx", file_bytes + external, tally.rows())


def _onnx_external_files(model, path: Path) -> list[Path]:
    """The external-data files the model's initializers name."""
    names = {entry.value for t in model.graph.initializer for entry in t.external_data if entry.key == "location"}
    return [path.with_name(name) for name in sorted(names)]


_XNN_DTYPES = {"xnn_datatype_fp32": "fp32", "xnn_datatype_fp16": "fp16", "xnn_datatype_qint8": "int8",
               "xnn_datatype_quint8": "uint8", "xnn_datatype_qint32": "int32", "xnn_datatype_qcint8": "int8",
               "xnn_datatype_qcint32": "int32", "xnn_datatype_qcint4": "int4", "xnn_datatype_qbint4": "int4"}


def _xnnpack_graph(payload: bytes) -> tuple[dict, int]:
    """The XNNPACK payload's graph as a dict (ExecuTorch's schema, read by ``flatc``) and its flatbuffer size."""
    from importlib.resources import files

    from executorch.backends.xnnpack.serialization.xnnpack_graph_serialize import XNNHeader
    from executorch.exir._serialize._flatbuffer import _get_flatc_path

    header = XNNHeader.from_bytes(payload[:XNNHeader.EXPECTED_LENGTH])
    flatbuffer = payload[header.flatbuffer_offset:header.flatbuffer_offset + header.flatbuffer_size]
    schema = files("executorch.backends.xnnpack.serialization").joinpath("schema.fbs")
    with tempfile.TemporaryDirectory(prefix="vmf-xnn-") as tmp:
        binary = Path(tmp) / "graph.bin"
        binary.write_bytes(flatbuffer)
        done = subprocess.run([_get_flatc_path(), "--json", "--strict-json", "--raw-binary", "-o", tmp,
                               str(schema), "--", str(binary)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ArtifactBytesError(f"flatc could not read the XNNPACK graph: {done.stderr.strip()}")
        text = (Path(tmp) / "graph.json").read_text()
    # flatc writes the clamps' infinities as bare inf, which JSON has no word for
    return json.loads(re.sub(r":\s*(-?)inf\b", r': "\1inf"', text)), header.flatbuffer_size


def _xnnpack_constant_roles(graph: dict) -> dict[int, str]:
    """Value id → role, for the filters and biases of convs and fully connected nodes."""
    roles: dict[int, str] = {}
    for xnode in graph.get("xnodes", []):
        kind, fields = xnode.get("xnode_union_type"), xnode.get("xnode_union", {})
        weights = {"XNNConv2d": CONV_WEIGHTS, "XNNDepthwiseConv2d": DEPTHWISE_WEIGHTS,
                   "XNNFullyConnected": LINEAR_WEIGHTS}.get(kind)
        if weights is None:
            continue
        roles.setdefault(fields.get("filter_id", -1), weights)
        roles.setdefault(fields.get("bias_id", -1), BIASES)
    return roles


def _delegate_payloads(program) -> list[tuple[str, bytes]]:
    """(backend id, inline payload) of each delegate of the program's methods, each payload once."""
    seen: set[int] = set()
    payloads = []
    for plan in program.execution_plan:
        for delegate in plan.delegates:
            index = delegate.processed.index
            if index in seen or index >= len(program.backend_delegate_data):
                continue
            seen.add(index)
            payloads.append((delegate.id, bytes(program.backend_delegate_data[index].data)))
    return payloads


def _pte_bytes(path: Path) -> ArtifactBytes:
    from executorch.exir._serialize._program import deserialize_pte_binary

    data = path.read_bytes()
    try:
        pte = deserialize_pte_binary(data)
    except Exception as e:
        raise ArtifactBytesError(f"{path}: not a readable ExecuTorch program ({e}); re-export it") from None
    named = pte.named_data
    named_sizes = ({key: len(named.buffers[entry.buffer_index]) for key, entry in named.pte_data.items()}
                   if named else {})
    tally = _Tally()
    counted: set[str] = set()
    attributed = 0
    for backend, payload in _delegate_payloads(pte.program):
        if backend != "XnnpackBackend":
            tally.add(OTHER, f"{backend} payload", len(payload))
            attributed += len(payload)
            continue
        graph, flatbuffer_size = _xnnpack_graph(payload)
        roles = _xnnpack_constant_roles(graph)
        constants = graph.get("constant_data", [])
        for xvalue in graph.get("xvalues", []):
            fields = xvalue.get("xvalue_union", {})
            tensor = fields.get("tensor_value", fields)
            index = tensor.get("constant_buffer_idx", 0)
            if not index or index >= len(constants):
                continue
            key = constants[index].get("named_key", "")
            if key in counted or key not in named_sizes:
                continue
            counted.add(key)
            dtype = _XNN_DTYPES.get(tensor.get("datatype", ""), tensor.get("datatype", "?"))
            tally.add(roles.get(tensor.get("id_out", -1), OTHER), dtype, named_sizes[key])
            attributed += named_sizes[key]
        tally.add(GRAPH, "XNNPACK flatbuffer", flatbuffer_size, tensors=0)
        attributed += flatbuffer_size
    for key, size in named_sizes.items():
        if key in counted:
            continue
        tally.add(SCALES if key.startswith("scale_") else OTHER, "fp32" if key.startswith("scale_") else "?", size)
        attributed += size
    program_constants = sum(len(b.storage) for b in pte.program.constant_buffer)
    if program_constants:
        tally.add(OTHER, "program constants", program_constants, tensors=len(pte.program.constant_buffer) - 1)
    tally.add(GRAPH, "program flatbuffer, headers, padding", len(data) - attributed - program_constants, tensors=0)
    return ArtifactBytes(str(path), "pte", len(data), tally.rows())


_IR_PASS_THROUGH = ("Convert", "Reshape", "Transpose", "Unsqueeze", "Squeeze", "FakeQuantize")
_IR_COMPUTE = {"Convolution": CONV_WEIGHTS, "GroupConvolution": DEPTHWISE_WEIGHTS, "MatMul": LINEAR_WEIGHTS}
_IR_SHAPE_READERS = ("Reshape", "Transpose", "Broadcast", "Gather", "ReduceMean", "ReduceSum", "ReduceMax", "MVN",
                     "Unsqueeze", "Squeeze", "Concat", "StridedSlice", "Tile")


class _IrGraph:
    """An OpenVINO IR's layers and edges: who reads each layer's output, who feeds each input."""

    def __init__(self, root) -> None:
        self.layers = {layer.get("id"): layer for layer in root.iter("layer")}
        self.readers: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.feeder: dict[tuple[str, int], str] = {}
        for edge in root.iter("edge"):
            source, target, port = edge.get("from-layer"), edge.get("to-layer"), int(edge.get("to-port"))
            self.readers[source].append((target, port))
            self.feeder[target, port] = source

    def kind(self, layer_id: str) -> str:
        return self.layers[layer_id].get("type")

    def from_constant(self, layer_id: str) -> bool:
        """Whether ``layer_id`` computes from constants alone through a decompression chain."""
        kind = self.kind(layer_id)
        if kind == "Const":
            return True
        if kind in _IR_PASS_THROUGH + ("Subtract", "Multiply"):
            source = self.feeder.get((layer_id, 0))
            return source is not None and self.from_constant(source)
        return False

    def role(self, layer_id: str) -> str:
        """The role of the value ``layer_id`` outputs, from the layers that read it."""
        for reader, port in self.readers.get(layer_id, []):
            kind = self.kind(reader)
            if kind == "FakeQuantize" and port >= 1:
                return SCALES
            if kind == "Subtract" and port == 1 and self.from_constant(self.feeder.get((reader, 0), "")):
                return ZERO_POINTS
            if kind == "Multiply" and port == 1 and self.from_constant(self.feeder.get((reader, 0), "")):
                return SCALES
            if kind in _IR_PASS_THROUGH + ("Subtract", "Multiply") and port == 0:
                return self.role(reader)
            if kind in _IR_COMPUTE:
                return _IR_COMPUTE[kind]
            if kind == "Add":
                other = self.feeder.get((reader, 1 - port))
                if other is not None and self.kind(other) in _IR_COMPUTE:
                    return BIASES
                if other is not None and self._after_norm(other):
                    return NORM_PARAMS
            if kind == "Multiply" and self._after_norm(self.feeder.get((reader, 1 - port), "")):
                return NORM_PARAMS
            if kind in _IR_SHAPE_READERS and port >= 1:
                return SHAPES
        return OTHER

    def _after_norm(self, layer_id: str) -> bool:
        """Whether ``layer_id`` is an MVN, or the Multiply by its scale."""
        if layer_id not in self.layers:
            return False
        kind = self.kind(layer_id)
        return kind == "MVN" or (kind == "Multiply" and self.kind(self.feeder.get((layer_id, 0), layer_id)) == "MVN")


def _openvino_bytes(path: Path) -> ArtifactBytes:
    from xml.etree import ElementTree

    weights = path.with_suffix(".bin")
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as e:
        raise ArtifactBytesError(f"{path}: not a readable OpenVINO IR ({e}); re-export it") from None
    if root.tag != "net":
        raise ArtifactBytesError(f"{path}: not an OpenVINO IR (its root is <{root.tag}>, not <net>); re-export it")
    graph = _IrGraph(root)
    tally = _Tally()
    seen: set[tuple[int, int]] = set()
    for layer_id, layer in graph.layers.items():
        data = layer.find("data")
        if layer.get("type") != "Const" or data is None:
            continue
        span = (int(data.get("offset")), int(data.get("size")))
        if span in seen:
            continue
        seen.add(span)
        tally.add(graph.role(layer_id), data.get("element_type", "?"), span[1])
    bin_bytes = weights.stat().st_size if weights.is_file() else 0
    tally.add(GRAPH, "IR .xml", path.stat().st_size, tensors=0)
    tally.add(GRAPH, ".bin bytes no constant reads", bin_bytes - sum(size for _, size in seen), tensors=0)
    return ArtifactBytes(str(path), "openvino", path.stat().st_size + bin_bytes, tally.rows())


def breakdown_table(named: list[tuple[str, ArtifactBytes]]) -> list[list[str]]:
    """Rows for a printed table: under each name, its artifact's rows with MB and share of the file."""
    table = []
    for name, item in named:
        table.append([name, Path(item.path).name, "", f"{item.file_bytes / 1e6:.3f}", "100.0%"])
        for row in item.rows:
            table.append([f"  {row.role}", row.dtype, str(row.tensors), f"{row.bytes / 1e6:.3f}",
                          f"{100 * row.bytes / item.file_bytes:.1f}%"])
    return table
