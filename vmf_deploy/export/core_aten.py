"""Write the captured program's few non-core ATen calls in core ATen, node by node, without a re-trace.

``to_edge_transform_and_lower`` functionalises the program (one re-trace through fake tensors),
then runs a second full ``run_decompositions`` whenever the graph still calls an op of the
decomposition table; on VMF-560M at 16 frames each re-trace takes 10 s here. The ExecuTorch
frames model reaches it with six such ops only, each of which becomes one core op with the
arguments rearranged, as the decompositions do (:data:`REWRITES`): ``conv2d`` → ``convolution``,
``softmax`` → ``_softmax``, ``transpose`` → ``permute``, ``reshape`` → ``view`` (after a
contiguous ``clone`` when the strides do not allow a view), ``pad`` (constant) →
``constant_pad_nd``, ``relu6`` → ``hardtanh``. :func:`to_core_aten` swaps those nodes in place,
so the second re-trace finds nothing to do and is skipped. The tests check that the lowered
program is byte for byte the stock path's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.export import ExportedProgram

aten = torch.ops.aten


@dataclass(frozen=True)
class Step:
    """A core call inserted before the node's replacement, used as one of its arguments."""

    target: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


Rewrite = Callable[[list[Any]], tuple[Any, tuple[Any, ...]] | None]
"""Full positional arguments of the node → ``(core op, its arguments)``, or None to leave the node.

An argument may be a :class:`Step`, a call inserted first whose output it is.
"""


def _conv2d(args: list[Any]) -> tuple[Any, tuple[Any, ...]]:
    x, weight, bias, stride, padding, dilation, groups = args
    return aten.convolution.default, (x, weight, bias, stride, padding, dilation, False, [0, 0], groups)


def _softmax(args: list[Any]) -> tuple[Any, tuple[Any, ...]] | None:
    x, dim, dtype = args
    return None if dtype is not None else (aten._softmax.default, (x, dim, False))


def _transpose(args: list[Any]) -> tuple[Any, tuple[Any, ...]] | None:
    x, dim0, dim1 = args
    value = x.meta.get("val") if isinstance(x, torch.fx.Node) else None
    if value is None:
        return None
    rank = value.dim()
    order = list(range(rank))
    order[dim0 % rank], order[dim1 % rank] = order[dim1 % rank], order[dim0 % rank]
    return aten.permute.default, (x, order)


def _pad(args: list[Any]) -> tuple[Any, tuple[Any, ...]] | None:
    x, pad, mode, value = args
    return None if mode != "constant" else (aten.constant_pad_nd.default, (x, pad, 0.0 if value is None else value))


def _reshape(args: list[Any]) -> tuple[Any, tuple[Any, ...]] | None:
    x, size = args
    value = x.meta.get("val") if isinstance(x, torch.fx.Node) else None
    if getattr(value, "fake_mode", None) is None:  # the copy's metadata is computed in the program's fake mode
        return None
    try:  # a view when the strides allow one, as ``reshape`` itself decides
        torch.empty_strided(value.shape, value.stride(), device="meta").view(size)
    except RuntimeError:  # else a contiguous copy first, viewed at the resolved size (no -1)
        shape = list(torch.empty(value.shape, device="meta").view(size).shape)
        return aten.view.default, (Step(aten.clone.default, (x,), {"memory_format": torch.contiguous_format}), shape)
    return aten.view.default, (x, size)


REWRITES: dict[Any, Rewrite] = {
    aten.reshape.default: _reshape,
    aten.conv2d.default: _conv2d,
    aten.softmax.int: _softmax,
    aten.transpose.int: _transpose,
    aten.pad.default: _pad,
    aten.relu6.default: lambda args: (aten.hardtanh.default, (args[0], 0, 6)),
}
"""Non-core op → its one-op core form (``torch._decomp``'s decomposition of it)."""


def _positional(node: torch.fx.Node) -> list[Any] | None:
    """The node's arguments in schema order, defaults filled in (None if a keyword is not in the schema)."""
    schema = node.target._schema
    args = list(node.args)
    for argument in schema.arguments[len(args):]:
        if argument.name in node.kwargs:
            args.append(node.kwargs[argument.name])
        elif argument.has_default_value():
            args.append(argument.default_value)
        else:
            return None
    known = {argument.name for argument in schema.arguments}
    return args if set(node.kwargs) <= known else None


def _meta_of(node: torch.fx.Node) -> dict[str, Any]:
    """``node``'s metadata for a node replacing it, descended from it as a decomposition's would be.

    ExecuTorch gives nodes with the same oldest ancestor one debug handle; with ``node`` as their
    ancestor the core nodes get the handles the stock decomposition gives them.
    """
    from torch.fx.traceback import NodeSource, NodeSourceAction

    meta = dict(node.meta)
    meta["from_node"] = [NodeSource(node, "to_core_aten", NodeSourceAction.REPLACE)]
    return meta


def _insert(graph: torch.fx.Graph, step: Step, node: torch.fx.Node) -> torch.fx.Node:
    """Insert ``step``'s call; its metadata is ``node``'s, with the value computed on the fake inputs."""
    inserted = graph.call_function(step.target, step.args, step.kwargs)
    inserted.meta = _meta_of(node)
    fake_mode = next(arg.meta["val"].fake_mode for arg in step.args if isinstance(arg, torch.fx.Node))
    with fake_mode:
        inserted.meta["val"] = step.target(*[arg.meta["val"] if isinstance(arg, torch.fx.Node) else arg
                                            for arg in step.args], **step.kwargs)
    return inserted


def to_core_aten(program: ExportedProgram) -> Counter[str]:
    """Swap the program's :data:`REWRITES` nodes for their core op in place; return how many of each."""
    swapped: Counter[str] = Counter()
    graph = program.graph_module.graph
    for node in list(graph.nodes):
        rewrite = REWRITES.get(node.target) if node.op == "call_function" else None
        args = _positional(node) if rewrite is not None else None
        replacement = rewrite(args) if args is not None else None
        if replacement is None:
            continue
        target, new_args = replacement
        with graph.inserting_before(node):
            new_args = tuple(_insert(graph, arg, node) if isinstance(arg, Step) else arg for arg in new_args)
            core = graph.call_function(target, new_args)
        core.meta = _meta_of(node)
        node.replace_all_uses_with(core)
        graph.erase_node(node)
        swapped[str(node.target)] += 1
    if swapped:
        graph.lint()
        program.graph_module.recompile()
    return swapped
