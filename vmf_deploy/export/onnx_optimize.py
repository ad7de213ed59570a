"""The optimize step of ``torch.onnx.export``, without the rewrite rule that cannot match but costs most.

``torch.onnx.export(optimize=True)`` ends with onnxscript's optimizer (constant folding and
``onnxscript.rewriter``'s default rules, then its ONNX fusions). One of those rules, ``SlicesSplit``
(two ``Slice`` nodes of one value's last-axis halves → one ``Split``), has a two-node pattern, and
onnxscript's matcher tries such patterns against every node paired with every other node: its time
grows with the square of the graph's size. On VMF-5G at 64 frames (1 927 nodes) it was 18 of the
trace's 56 s. The rule can only fire where a value is read by two or more ``Slice`` nodes, and
none of the optimizer's other steps adds a ``Slice`` reader to a value. :func:`optimize` runs the
same optimizer, through the same call ``torch.onnx`` makes, and leaves that rule out when the
graph has no such value; the tests check the result is byte-identical to the exporter's own.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

QUADRATIC_RULES = ("SlicesSplit",)
"""The default rules whose matching is quadratic in the graph's size and that need two ``Slice`` readers of a value."""


def reads_twice_by_slice(model: Any) -> bool:
    """Whether some value of ``model`` (an ``onnx_ir.Model``, subgraphs included) is the data input of two ``Slice`` nodes."""
    import onnx_ir as ir

    readers: Counter[int] = Counter()
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        if node.op_type == "Slice" and node.domain in ("", "ai.onnx") and node.inputs and node.inputs[0] is not None:
            readers[id(node.inputs[0])] += 1
    return any(count >= 2 for count in readers.values())


@contextlib.contextmanager
def default_rules_without(names: tuple[str, ...]) -> Iterator[None]:
    """Within the block, ``onnxscript.rewriter``'s default rule set lacks the rules named ``names``."""
    from onnxscript import rewriter

    stock = rewriter._DEFAULT_REWRITE_RULES
    rewriter._DEFAULT_REWRITE_RULES = tuple(rule for rule in stock if rule.name not in names)
    try:
        yield
    finally:
        rewriter._DEFAULT_REWRITE_RULES = stock


def optimize(program: Any) -> bool:
    """Run ``torch.onnx``'s optimize step on ``program`` (an ``ONNXProgram``) in place.

    Returns whether the quadratic rules were left out (the graph had no value read by two ``Slice`` nodes).
    """
    skip = not reads_twice_by_slice(program.model)
    with default_rules_without(QUADRATIC_RULES) if skip else contextlib.nullcontext():
        program.optimize()
    return skip


def name_io(model: Any, inputs: list[str], outputs: list[str]) -> None:
    """Rename the graph's inputs and outputs as ``torch.onnx.export(input_names=, output_names=)`` does.

    The exporter renames them after its optimize step, recording each old name in the value's
    ``pkg.torch.onnx.original_node_name``; so does this, after :func:`optimize`.
    """
    for values, names in ((model.graph.inputs, inputs), (model.graph.outputs, outputs)):
        for value, name in zip(values, names, strict=True):
            value.metadata_props["pkg.torch.onnx.original_node_name"] = str(value.name)
            value.name = name
