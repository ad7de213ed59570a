"""Skip the ``to_edge`` passes that have nothing to change in the program.

``to_edge`` runs a fixed list of graph passes before it swaps ATen ops for edge ops. Several are
``ExportPass`` es: each re-traces the whole graph through fake tensors, whether or not it changes
anything (2–3 s per pass on 560m here). Four of them act only on what the frames model never
contains: ``aten.t`` (``NormalizeTransposePass``), view ops left after the view-copy pass
(``ReplaceBrokenOpsWithFunctionalOpsPass``), symbolic sizes (``SymToTensorPass``) and binary ops
whose tensor operands differ in dtype (``RemoveMixedTypeOperators``). :data:`WORK_TEST` holds, per
such pass, a test that is true whenever the pass could change the graph, written from the pass's own
condition; inside :func:`idle_edge_passes_skipped` a pass whose test is false is not run. The tests
lower a model with nothing for the four and models that give the mixed-dtype and symbolic-size passes
work both ways (same programs), and check the transpose and view tests on hand-built graphs; 560m's
and 5g's programs were compared the same way (``benchmarks/NOTES.md``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from executorch.exir.pass_base import PassResult
from executorch.exir.passes.normalize_transpose_pass import NormalizeTransposePass
from executorch.exir.passes.remove_mixed_type_operators import RemoveMixedTypeOperators
from executorch.exir.passes.replace_broken_ops_with_function_ops_pass import ReplaceBrokenOpsWithFunctionalOpsPass
from executorch.exir.passes.sym_to_tensor_pass import SymToTensorPass
from executorch.exir.program import _program
from torch._prims_common import ELEMENTWISE_TYPE_PROMOTION_KIND, elementwise_dtypes

WorkTest = Callable[[torch.fx.GraphModule], bool]

_SYMBOLIC = (torch.SymInt, torch.SymFloat, torch.SymBool)

_PROMOTION = {
    torch.ops.aten.add.Tensor: ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT,
    torch.ops.aten.mul.Tensor: ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT,
    torch.ops.aten.sub.Tensor: ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT,
    torch.ops.aten.div.Tensor: ELEMENTWISE_TYPE_PROMOTION_KIND.INT_TO_FLOAT,
    torch.ops.aten.div.Tensor_mode: ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT,
    torch.ops.aten.minimum.default: ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT,
}
"""``RemoveMixedTypeOperators``' allow list: the ops it casts operands of, with their promotion kind."""


def _calls(gm: torch.fx.GraphModule) -> Iterator[torch.fx.Node]:
    return (node for node in gm.graph.nodes if node.op == "call_function")


def _has_transpose(gm: torch.fx.GraphModule) -> bool:
    """``NormalizeTransposePass`` swaps ``aten.t`` for ``aten.t_copy``."""
    return any(node.target == torch.ops.aten.t.default for node in _calls(gm))


def _has_view_op(gm: torch.fx.GraphModule) -> bool:
    """``ReplaceBrokenOpsWithFunctionalOpsPass`` swaps every view op (``OpOverload.is_view``) for its copy."""
    return any(getattr(node.target, "is_view", False) for node in _calls(gm))


def _has_symbolic_value(gm: torch.fx.GraphModule) -> bool:
    """``SymToTensorPass`` wraps SymInt / SymFloat / SymBool values; a static graph has none."""
    return any(isinstance(node.meta.get("val"), _SYMBOLIC) for node in gm.graph.nodes)


def _operand(gm: torch.fx.GraphModule, arg: object) -> object:
    """What ``RemoveMixedTypeOperators`` sees for an argument: a tensor (fake or constant), a symbol or a scalar."""
    if not isinstance(arg, torch.fx.Node):
        return arg
    if arg.op == "get_attr":
        return getattr(gm, arg.target, None)
    return arg.meta.get("val")


def _has_mixed_types(gm: torch.fx.GraphModule) -> bool:
    """``RemoveMixedTypeOperators``' condition: a tensor argument of an allow-listed op not of the promoted dtype."""
    for node in _calls(gm):
        kind = _PROMOTION.get(node.target)
        if kind is None or len(node.args) <= 1:
            continue
        if node.target == torch.ops.aten.div.Tensor_mode and node.kwargs.get("rounding_mode") is None:
            kind = ELEMENTWISE_TYPE_PROMOTION_KIND.INT_TO_FLOAT
        operands = [_operand(gm, arg) for arg in node.args]
        if any(value is None for value in operands):
            return True  # no value recorded: let the pass decide
        try:
            promoted = elementwise_dtypes(*operands, type_promotion_kind=kind)[1]
        except (TypeError, ValueError, RuntimeError):
            return True
        for i, schema in enumerate(node.target._schema.arguments):
            if not isinstance(schema.type, torch.TensorType):
                continue
            if schema.name in node.kwargs:
                value = _operand(gm, node.kwargs[schema.name])
            elif not schema.kwarg_only and i < len(node.args):
                value = operands[i]
            else:
                continue
            if isinstance(value, _SYMBOLIC):
                continue
            if not (isinstance(value, torch.Tensor) and value.dtype == promoted):
                return True
    return False


WORK_TEST: dict[type, WorkTest] = {
    NormalizeTransposePass: _has_transpose,
    ReplaceBrokenOpsWithFunctionalOpsPass: _has_view_op,
    SymToTensorPass: _has_symbolic_value,
    RemoveMixedTypeOperators: _has_mixed_types,
}
"""Per ``to_edge`` pass: true when the pass could change the graph. Passes not listed always run."""


def _pass_type(pass_: Callable) -> type:
    """The pass class of a ``to_edge`` pass (ExecuTorch wraps each instance in a ``PassResult`` function)."""
    return type(getattr(pass_, "__wrapped__", pass_))


class _SkipWhenIdle:
    """A ``to_edge`` pass that returns the graph unchanged, without re-tracing it, when its work test is false."""

    def __init__(self, pass_: Callable[[torch.fx.GraphModule], PassResult], skipped: list[str]) -> None:
        self.pass_, self.skipped = pass_, skipped
        self.has_work = WORK_TEST[_pass_type(pass_)]

    def __call__(self, gm: torch.fx.GraphModule) -> PassResult:
        if self.has_work(gm):
            return self.pass_(gm)
        self.skipped.append(_pass_type(self.pass_).__name__)
        return PassResult(gm, False)


@contextlib.contextmanager
def idle_edge_passes_skipped() -> Iterator[list[str]]:
    """Within the block ``to_edge`` skips its idle passes; yields the skipped passes' names."""
    skipped: list[str] = []
    previous = _program._get_aten_to_edge_passes

    def passes(config: object) -> tuple[list, list]:
        pre, post = previous(config)
        return [_SkipWhenIdle(p, skipped) if _pass_type(p) in WORK_TEST else p for p in pre], post

    _program._get_aten_to_edge_passes = passes
    try:
        yield skipped
    finally:
        _program._get_aten_to_edge_passes = previous
