"""Which module of the reference model each node of an exported ONNX graph belongs to.

onnxsim drops the exporter's per-node scope metadata, but the weights keep the module's
state-dict name (``blocks.2.mobile.expand.weight``). A node that reads a named weight belongs
to that weight's module. Any other node prepares the input of what consumes it, so it
belongs to the module of its first consumer, lifted to the parent when that consumer is a
leaf module (the softmax of a bridge, consumed by an attention ``MatMul`` and then by the
bridge's ``proj`` Linear, belongs to the bridge); a node nothing consumes takes its
producer's module. Good enough to name the block and the layer of a numeric problem, and to
keep chosen module classes in fp32.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

COMPUTE_OP_TYPES = ("Conv", "Gemm", "MatMul", "ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul")
"""Node types counted as compute (the ones int8 speeds up)."""


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def _common_prefix(paths: Iterable[str]) -> str:
    parts = [p.split(".") for p in paths]
    common: list[str] = []
    for names in zip(*parts):
        if len(set(names)) != 1:
            break
        common.append(names[0])
    return ".".join(common)


def node_modules(graph: Any, module_paths: set[str] | None = None) -> dict[str, str]:
    """``{node name: module path}`` for every node of ``graph`` (an ``onnx.GraphProto``); ``""`` if unknown.

    ``module_paths`` (the reference model's ``named_modules`` names) marks which paths are
    modules with children, so that inherited names can be lifted out of leaf modules.
    """
    initializers = {init.name for init in graph.initializer}
    known = module_paths
    parents = {_parent(p) for p in known} if known else set()

    def nearest_known(path: str) -> str:
        while known is not None and path and path not in known:
            path = _parent(path)
        return path

    def lifted(path: str) -> str:
        return _parent(path) if known is not None and path in known and path not in parents else path

    nodes = list(graph.node)
    own = {}
    for node in nodes:
        weights = [_parent(name) for name in node.input if name in initializers and "." in name]
        own[node.name] = nearest_known(_common_prefix(weights)) if weights else None
    consumer: dict[str, str] = {}
    out: dict[str, str] = {}
    for node in reversed(nodes):
        module = own[node.name]
        if module is None:
            module = next((consumer[name] for name in node.output if name in consumer), None)
        out[node.name] = module if module is not None else ""
        for name in node.input:
            consumer[name] = lifted(out[node.name]) if own[node.name] is not None else out[node.name]
    producer: dict[str, str] = {}
    for node in nodes:  # what nothing downstream claimed takes its producer's module
        if not out[node.name]:
            out[node.name] = next((producer[name] for name in node.input if producer.get(name)), "")
        for name in node.output:
            producer[name] = out[node.name]
    return out


def kept_module(path: str, classes: dict[str, str], keep: set[str]) -> str | None:
    """The entry of ``keep`` (a class name, or a module path such as ``blocks.0.mobile``) that ``path`` or a module
    above it matches, innermost first; ``None`` if none does."""
    while True:
        if path in keep:
            return path
        if classes.get(path) in keep:
            return classes[path]
        if not path:
            return None
        path = _parent(path)


def scope_modules(proto: Any) -> dict[str, str]:
    """``{node name: module path}`` from the dynamo exporter's per-node scopes (before onnxsim drops them).

    Each node of ``torch.onnx.export(dynamo=True)`` carries ``pkg.torch.onnx.name_scopes``, the
    module paths from the root down to the op; the innermost module is the one before the op's
    own name. onnxsim keeps the names of the nodes it keeps, so this map also names the nodes
    of the simplified graph, Linear layers included (whose folded weights lose their names).
    """
    import ast

    out: dict[str, str] = {}
    for node in proto.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
        if scopes is None:
            continue
        try:
            names = ast.literal_eval(scopes)
        except (ValueError, SyntaxError):
            continue
        if isinstance(names, list) and len(names) >= 2:
            out[node.name] = str(names[-2])
    return out
