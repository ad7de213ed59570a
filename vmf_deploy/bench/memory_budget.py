"""The memory a model needs at least: its weights plus its largest set of live activations.

Issue 8 asks that the peak resident memory of inference stay under twice
``weights + largest activation set``. The activation part is a liveness analysis of
the model's ``torch.export`` graph in its own (topological) order: each op's output is
allocated when the op runs and freed after its last reader; ops whose output aliases an
input (views, reshapes of contiguous tensors, permutes) allocate nothing and keep their
base alive. The maximum over the schedule of the bytes alive at once, the model's
input included, is the largest activation set. Any runtime that executes the same ops
without recomputation needs at least that much; runtimes plan differently (fusions
remove intermediates, 2D rewrites add copies), which is what the 2× allowance is for.

Export runs on fake tensors: no activation is computed, so a 64-frame 5G clip is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MemoryBudget:
    """Weights and the largest activation set of one model on one input shape (bytes)."""

    weights_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        """Weights plus the largest activation set."""
        return self.weights_bytes + self.activation_bytes

    def limit_bytes(self, factor: float = 2.0) -> int:
        """The resident-memory allowance: ``factor`` × (weights + largest activation set)."""
        return int(factor * self.total_bytes)


def _tensor_bytes(value: object) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def _aliases_input(target: object) -> bool:
    """True if the op's first output is a view of one of its inputs (allocates no storage)."""
    schema = getattr(target, "_schema", None)
    return bool(schema and schema.returns and schema.returns[0].alias_info is not None
                and not schema.returns[0].alias_info.is_write)


def largest_activation_set(graph: torch.fx.Graph, weights: frozenset[str] = frozenset()) -> int:
    """Peak bytes of simultaneously live activations over ``graph``'s node order.

    ``weights`` names the placeholders that hold parameters and buffers (not counted);
    every other placeholder is an input, live from the start until its last reader.
    """
    nodes = list(graph.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    owner: dict[torch.fx.Node, torch.fx.Node] = {}  # node -> the node whose storage it uses
    size: dict[torch.fx.Node, int] = {}
    for n in nodes:
        if n.op in ("output", "get_attr") or n.name in weights:
            continue
        base = None
        if n.op == "call_function" and _aliases_input(n.target):
            base = next((a for a in n.all_input_nodes if a in owner), None)
        owner[n] = n if base is None else owner[base]
        if base is None:
            size[n] = _tensor_bytes(n.meta.get("val"))
    end: dict[torch.fx.Node, int] = {}
    for n, o in owner.items():  # a storage lives until the last reader of any of its views
        end[o] = max(end.get(o, index[n]), index[n], *(index[u] for u in n.users))
    frees: dict[int, list[torch.fx.Node]] = {}
    for o, i in end.items():
        frees.setdefault(i, []).append(o)
    live = peak = 0
    for i, n in enumerate(nodes):
        live += size.get(n, 0)
        peak = max(peak, live)
        live -= sum(size[o] for o in frees.get(i, ()))
    return peak


def memory_budget(model: nn.Module, example: torch.Tensor) -> MemoryBudget:
    """Weights (parameters and buffers) and the largest activation set of ``model(example)`` in eval mode."""
    model = model.eval()
    weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    with torch.no_grad():
        program = torch.export.export(model, (example,), strict=False)
    sig = program.graph_signature
    weight_inputs = frozenset((*sig.inputs_to_parameters, *sig.inputs_to_buffers,
                               *sig.inputs_to_lifted_tensor_constants))
    return MemoryBudget(weights_bytes=weights, activation_bytes=largest_activation_set(program.graph, weight_inputs))
