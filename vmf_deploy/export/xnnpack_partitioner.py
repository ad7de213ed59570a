"""The XNNPACK partitioner, telling ``to_edge`` when its per-node op check can be skipped.

``to_edge_transform_and_lower`` asks each partitioner which ATen ops to keep whole (``aten.linear``,
``aten.hardswish``, …) and for a per-node check of those ops. With a check it runs two more
``run_decompositions`` over the whole program (keep the ops; swap the nodes that pass the check for
placeholders; decompose everything else, then the nodes that failed); without one it keeps the ops in
a single decomposition, skipped when nothing is left to decompose. When every node of those ops
passes the check, both paths produce the same program, so :class:`CheckedXnnpackPartitioner` runs
the check itself, once, and returns no check. Each ``run_decompositions`` re-traces the program
(6–7 s on 560m here), so this saves one of the three; the ``.pte`` is byte-identical (a test checks it).

Its configs are ExecuTorch's with two changes (:data:`CONFIG_OVERRIDES`): a zero pad of an int8 tensor is
lowered as an int8 pad (``xnnpack_int8_pad``), and a linear of fp32 activations and int8 weights as one
weight-only int8 op (``xnnpack_weight_only_linear``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
from executorch.backends.xnnpack.partition.config.gemm_configs import LinearConfig
from executorch.backends.xnnpack.partition.config.generic_node_configs import ConstantPadConfig
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from torch.export import ExportedProgram

from .xnnpack_int8_pad import Int8ConstantPadConfig
from .xnnpack_weight_only_linear import WeightOnlyLinearConfig

CONFIG_OVERRIDES = {ConstantPadConfig: Int8ConstantPadConfig, LinearConfig: WeightOnlyLinearConfig}
"""ExecuTorch's partitioner configs that the export replaces, and their replacements."""
PARTITIONER_CONFIGS = [CONFIG_OVERRIDES.get(config, config) for config in ALL_PARTITIONER_CONFIGS]

OpCheck = Callable[[torch.fx.Node], bool]


def nodes_failing(program: ExportedProgram, ops: list[torch._ops.OpOverload], check: OpCheck) -> list[torch.fx.Node]:
    """The call nodes of ``program`` (subgraphs included) whose target is one of ``ops`` and that fail ``check``."""
    kept = set(ops)
    return [node for module in program.graph_module.modules() if isinstance(module, torch.fx.GraphModule)
            for node in module.graph.nodes
            if node.op == "call_function" and node.target in kept and not check(node)]


class CheckedXnnpackPartitioner(XnnpackPartitioner):
    """``XnnpackPartitioner`` that returns no per-node op check when every node of its kept ops passes it."""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003 - XnnpackPartitioner's keyword arguments
        kwargs.setdefault("configs", PARTITIONER_CONFIGS)
        super().__init__(**kwargs)

    def ops_to_not_decompose(self, ep: ExportedProgram) -> tuple[list[torch._ops.OpOverload], OpCheck | None]:
        """The ops to keep whole, and ``None`` for the check when no node of them fails it (else the check)."""
        ops, check = super().ops_to_not_decompose(ep)
        if check is None or ep is None or nodes_failing(ep, ops, check):
            return ops, check
        return ops, None
