"""Skip ``to_edge``'s functionalisation re-trace of a program that is already functional.

``to_edge_transform_and_lower`` starts with ``program.run_decompositions({})``: a re-trace of the
whole graph through fake tensors (8–10 s on 560m here) that functionalises the program (in-place
and mutating ops become functional ones, mutated inputs become outputs) and decomposes the
CompositeImplicit ops that cannot be kept (aliasing or mutating ones such as ``reshape``). The
frames model reaches it with none of these: after :func:`vmf_deploy.export.core_aten.to_core_aten`
every call is a functional ATen op and nothing is mutated. Inside :func:`functionalisation_skipped`
that call returns the program as it is, in the ATen dialect and re-checked by its verifier, when
:func:`functionalisation_blockers` finds nothing to do; any other program is re-traced as before.
The re-trace also lists parameters and buffers in the order of the module it unlifts, which can
differ from the captured order (5g: a buffer of a parameterless module); the skip puts the inputs
in that order first. The tests lower models both ways (byte-identical programs), and 560m's and 5g's
fp32 and 560m's int8 programs were compared the same way (``benchmarks/NOTES.md``).
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator

import torch
from torch._decomp import _should_decompose_because_unsafe_op
from torch._export.utils import _is_cia_op
from torch._export.verifier import Verifier
from torch.export import ExportedProgram
from torch.export.graph_signature import ExportGraphSignature, InputKind, InputSpec, OutputKind

_KEPT_INPUTS = (InputKind.USER_INPUT, InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR)


def _aliases(op: torch._ops.OpOverload) -> bool:
    """True when the op's schema lets an output alias an input (a view)."""
    return any(arg.alias_info is not None for arg in (*op._schema.arguments, *op._schema.returns))


def functionalisation_blockers(program: ExportedProgram) -> list[str]:
    """What ``program.run_decompositions({})`` would change; empty when it would only re-trace.

    Blockers: an input or output other than user inputs/outputs, parameters, buffers and constants
    (a mutation, an effect token); a call that is not an ATen-style op overload (a higher-order op,
    a Python function); a mutating op; a view that is not a core ATen op; an op export always
    decomposes (CompositeImplicit and unsafe to keep).
    """
    signature = program.graph_signature
    blockers = [f"input {spec.arg} is a {spec.kind.name}" for spec in signature.input_specs
                if spec.kind not in _KEPT_INPUTS]
    blockers += [f"output {spec.arg} is a {spec.kind.name}" for spec in signature.output_specs
                 if spec.kind != OutputKind.USER_OUTPUT]
    for node in program.graph.nodes:
        if node.op != "call_function" or node.target is operator.getitem:
            continue
        op = node.target
        if not isinstance(op, torch._ops.OpOverload):
            blockers.append(f"{node.name} calls {op}")
        elif op._schema.is_mutable:
            blockers.append(f"{node.name} calls the mutating {op}")
        elif _aliases(op) and torch.Tag.core not in op.tags:
            blockers.append(f"{node.name} calls the non-core view {op}")
        elif _is_cia_op(op) and _should_decompose_because_unsafe_op(op):
            blockers.append(f"{node.name} calls {op}, which export always decomposes")
    return blockers


def retrace_input_order(program: ExportedProgram) -> list[InputSpec] | None:
    """The program's input specs in the order a re-trace gives them, or None when that order is not known.

    ``run_decompositions`` re-traces the unlifted module (``program.module()``) and lists parameters,
    then buffers, in that module's ``named_parameters`` / ``named_buffers`` order; constants and user
    inputs keep theirs. Unlifting copies the graph (2.5 s on 5g here, a tenth of the re-trace). None
    when two names share one tensor (the re-trace's de-duplication is not modelled).
    """
    signature = program.graph_signature
    unlifted = program.module()
    parameters = dict(unlifted.named_parameters(remove_duplicate=False))
    buffers = dict(unlifted.named_buffers(remove_duplicate=False))
    if len({id(t) for t in (*parameters.values(), *buffers.values())}) != len(parameters) + len(buffers):
        return None
    by_target = {spec.target: spec for spec in signature.input_specs if spec.kind in (InputKind.PARAMETER,
                                                                                       InputKind.BUFFER)}
    ordered = [by_target[name] for name in (*parameters, *buffers)]
    rest = [spec for spec in signature.input_specs if spec.kind not in (InputKind.PARAMETER, InputKind.BUFFER)]
    return ordered + rest if len(ordered) == len(by_target) else None


def _in_retrace_order(program: ExportedProgram, order: list[InputSpec]) -> ExportedProgram:
    """``program`` in the ATen dialect with its inputs (placeholders and specs) in ``order``."""
    if order != list(program.graph_signature.input_specs):
        placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
        first_call = next(node for node in program.graph.nodes if node.op != "placeholder")
        for spec in order:
            first_call.prepend(placeholders[spec.arg.name])
    signature = ExportGraphSignature(order, program.graph_signature.output_specs)
    return program._update(program.graph_module, signature, verifiers=[Verifier])


@contextlib.contextmanager
def functionalisation_skipped(program: ExportedProgram) -> Iterator[list[str]]:
    """Within the block ``program.run_decompositions({})`` returns ``program`` in the ATen dialect, un-traced.

    Only for this program object, and only when :func:`functionalisation_blockers` finds nothing;
    yields those blockers (empty when the re-trace is skipped). The program's graph is handed on, not
    copied: use the program only for the lowering inside the block.
    """
    blockers = functionalisation_blockers(program)
    order = None if blockers else retrace_input_order(program)
    if not blockers and order is None:
        blockers.append("two parameter or buffer names share one tensor")
    stock = ExportedProgram.run_decompositions

    def run_decompositions(self: ExportedProgram, decomp_table: dict | None = None, *args: object,
                           **kwargs: object) -> ExportedProgram:
        if self is program and decomp_table == {} and not args and not kwargs:
            return _in_retrace_order(self, order)
        return stock(self, decomp_table, *args, **kwargs)

    if not blockers:
        ExportedProgram.run_decompositions = run_decompositions
    try:
        yield blockers
    finally:
        ExportedProgram.run_decompositions = stock
