"""ExecuTorch lowering: module rewrites → ``torch.export`` → XNNPACK partition → ``.pte`` bytes.

``lower_to_executorch`` runs the ``executorch`` module rewrites (BatchNorm folding, the
4D frames layout), captures the result with ``torch.export``, lowers it with
``to_edge_transform_and_lower`` and the XNNPACK partitioner, checks the delegation
against the recipe, and serialises it with the recipe's memory planning. ExecuTorch
is imported inside the functions (``import executorch.exir`` takes seconds).

The ``[executorch]`` table of the recipe (``export/executorch.toml``) is validated here:
see :data:`EXECUTORCH_KEYS`.
"""

from __future__ import annotations

import copy
import operator
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vmf_deploy.export.core_aten import to_core_aten
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.lowering import Lowered, LoweringJob
from vmf_deploy.export.provenance import shared_provenance

COMPUTE_OPS = ("aten.convolution", "aten.linear", "aten.mm", "aten.addmm", "aten.bmm", "aten.matmul",
               "aten.baddbmm")
"""Op names (without overload) counted as compute for ``compute_ops_delegated_pct``."""

EXECUTORCH_KEYS: dict[str, tuple[Any, str]] = {
    "partitioner": (lambda v: v == "xnnpack", "\"xnnpack\" (the only delegate this toolkit lowers to)"),
    "memory_planning": (lambda v: v in ("greedy", "naive"), "\"greedy\" or \"naive\""),
    "alloc_graph_input": (lambda v: isinstance(v, bool), "true or false"),
    "alloc_graph_output": (lambda v: isinstance(v, bool), "true or false"),
    "extract_delegate_segments": (lambda v: isinstance(v, bool), "true or false"),
    "require_full_delegation": (lambda v: isinstance(v, bool), "true or false"),
}
"""Keys of the recipe's ``[executorch]`` table → (check, what a valid value is). All are required."""


@dataclass
class ExecuTorchProgram:
    """A lowered ExecuTorch program and what the manifest records about it.

    Attributes:
        buffer: the ``.pte`` bytes.
        delegation: the delegation summary (:func:`delegation_summary`).
        rewrites: ``[{"name", "count"}]`` of the module rewrites applied.
        seconds: wall time of each step (``rewrite``, ``export``, ``lower``, ``serialize``).
        options: the validated ``[executorch]`` recipe table that produced it.
    """

    buffer: bytes
    delegation: dict
    rewrites: list[dict]
    seconds: dict[str, float] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write the ``.pte`` through a temp file in the same folder, then rename (never half-written)."""
        from vmf_deploy.atomic import atomic_output

        path = Path(path)
        with atomic_output(path) as tmp:
            tmp.write_bytes(self.buffer)
        return path


def _recipe_parts(recipe: Any) -> tuple[dict, str]:
    """The ``[executorch]`` table and a name for error messages, from a Recipe or a plain dict."""
    if isinstance(recipe, dict):
        return recipe.get("executorch", recipe), "the recipe"
    return recipe.options, str(getattr(recipe, "source", "the recipe"))


def executorch_options(recipe: Any) -> tuple[dict, str]:
    """Validate the recipe's ``[executorch]`` table; return it and the recipe's name (ExportError on a bad key)."""
    options, where = _recipe_parts(recipe)
    if not isinstance(options, dict):
        raise ExportError(f"recipe {where}: [executorch] must be a table; edit the file or pass another with --recipe")
    for key, value in options.items():
        if key not in EXECUTORCH_KEYS:
            raise ExportError(f"recipe {where}: [executorch].{key} is not a known key (known: "
                              f"{', '.join(EXECUTORCH_KEYS)}); edit the file or pass another with --recipe")
        check, expected = EXECUTORCH_KEYS[key]
        if not check(value):
            raise ExportError(f"recipe {where}: [executorch].{key} must be {expected}, got {value!r}; edit the "
                              "file or pass another with --recipe")
    missing = sorted(set(EXECUTORCH_KEYS) - set(options))
    if missing:
        raise ExportError(f"recipe {where}: [executorch] lacks {missing}; see export/executorch.toml")
    return dict(options), where


def _op_name(target: Any) -> str:
    """``aten.convolution.default`` style name of an edge-dialect op target."""
    name = getattr(target, "__name__", str(target))
    return name if name.startswith(("aten.", "dim_order_ops.", "quantized_decomposed.")) else str(target)


def _base_op(name: str) -> str:
    """The op name without its overload: ``aten.convolution.default`` → ``aten.convolution``."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else name


def delegation_summary(graph_module: torch.fx.GraphModule) -> dict:
    """Delegated vs portable op counts of a lowered edge graph, by op, and the compute-op delegation.

    Returns ``{"delegate": "XnnpackBackend", "delegated_subgraphs", "delegated_ops", "portable_ops",
    "by_op": {op: {"delegated", "portable"}}, "compute_ops": {"delegated", "portable"},
    "compute_ops_delegated_pct", "portable_compute_ops": [op, ...]}``. Compute ops are
    conv/linear/matmul (:data:`COMPUTE_OPS`); tuple ``getitem`` nodes are not ops and are skipped.
    """
    delegated: Counter[str] = Counter()
    portable: Counter[str] = Counter()
    subgraphs = 0
    for node in graph_module.graph.nodes:
        if node.op == "get_attr" and node.name.startswith("lowered_module"):
            subgraphs += 1
            lowered = getattr(graph_module, node.target)
            for inner in lowered.original_module.graph.nodes:
                if inner.op == "call_function" and inner.target is not operator.getitem:
                    delegated[_op_name(inner.target)] += 1
        elif node.op == "call_function" and node.target is not operator.getitem:
            name = _op_name(node.target)
            if "executorch_call_delegate" not in name:
                portable[name] += 1
    ops = sorted(set(delegated) | set(portable))
    compute_d = sum(n for op, n in delegated.items() if _base_op(op) in COMPUTE_OPS)
    compute_p = sum(n for op, n in portable.items() if _base_op(op) in COMPUTE_OPS)
    total = compute_d + compute_p
    return {
        "delegate": "XnnpackBackend",
        "delegated_subgraphs": subgraphs,
        "delegated_ops": sum(delegated.values()),
        "portable_ops": sum(portable.values()),
        "by_op": {op: {"delegated": delegated[op], "portable": portable[op]} for op in ops},
        "compute_ops": {"delegated": compute_d, "portable": compute_p},
        "compute_ops_delegated_pct": 100.0 * compute_d / total if total else 100.0,
        "portable_compute_ops": sorted(op for op in portable if _base_op(op) in COMPUTE_OPS),
    }


def _memory_planning_pass(options: dict):  # noqa: ANN202 - executorch type imported lazily
    """The MemoryPlanningPass of the recipe: greedy (shares buffers by lifetime) or naive (one buffer per tensor)."""
    from executorch.exir.memory_planning import MemoryPlanningAlgorithmSuite, greedy, naive
    from executorch.exir.passes import MemoryPlanningPass

    algo = greedy if options["memory_planning"] == "greedy" else naive
    return MemoryPlanningPass(memory_planning_algo=MemoryPlanningAlgorithmSuite(algo_list=[algo]),
                              alloc_graph_input=options["alloc_graph_input"],
                              alloc_graph_output=options["alloc_graph_output"])


def _hardsigmoid_with_scalars(x: torch.Tensor) -> torch.Tensor:
    """ATen's ``hardsigmoid`` as ``hardtanh(x + 3, 0, 6) / 6`` with Python-scalar constants.

    The default decomposition lifts its constants as 0-d tensors, which ExecuTorch converts with
    portable ``_to_dim_order_copy`` ops outside the delegate at every run.
    """
    return torch.ops.aten.div.Tensor(torch.ops.aten.hardtanh.default(torch.ops.aten.add.Tensor(x, 3.0), 0.0, 6.0), 6.0)


_SCALAR_DECOMPOSITIONS = {torch.ops.aten.hardsigmoid.default: _hardsigmoid_with_scalars}


def _calls_any(exported: Any, ops: dict) -> bool:
    """Whether the captured graph calls one of ``ops`` (the frames rewrites avoid ``hardsigmoid``; others may not)."""
    return any(node.op == "call_function" and node.target in ops for node in exported.graph_module.graph.nodes)


Quantize = Callable[[Any, torch.Tensor], Any]
"""``(exported program of the rewritten model, example) → quantized exported program`` (PT2E)."""


def lower_to_executorch(model: nn.Module, example: torch.Tensor, recipe: Any, fuse: bool = True,
                        quantize: Quantize | None = None,
                        wrap: Callable[[nn.Module], nn.Module] | None = None) -> ExecuTorchProgram:
    """Lower ``model`` (eval mode) for input ``example`` to an ExecuTorch XNNPACK program.

    Args:
        model: the PyTorch model (5D input ``(B, 3, T, H, W)``); not modified.
        example: an input of the static shape the program is built for.
        recipe: a :class:`vmf_deploy.export.recipes.Recipe` (or a dict with an ``executorch`` table).
        fuse: False runs only the rewrites the target requires (``--no-fuse``).
        quantize: int8: quantizes the captured 4D program before lowering (a ``quantize`` step is
            timed); the delegation summary then counts int8 and fp32 compute ops.
        wrap: applied to the rewritten 4D model before capture (``vmf_deploy.numerics`` adds its
            block outputs to the program's outputs this way).

    Raises:
        ExportError: a bad recipe, a capture/lowering failure (with the failing op and what to
            change), or, with ``require_full_delegation``, compute ops left to portable kernels.
    """
    from vmf_deploy.rewrites import run_rewrites

    options, where = executorch_options(recipe)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    model = copy.deepcopy(model).eval()
    model.example_input_shape = tuple(example.shape)  # the static shape the rewrites size themselves for
    try:
        rewritten, applied = run_rewrites("executorch", "module", model, fuse=fuse)
    except (TypeError, ValueError) as e:
        raise ExportError(f"the ExecuTorch module rewrites failed on {type(model).__name__}: {e}") from None
    if wrap is not None:
        rewritten = wrap(rewritten)
    seconds["rewrite"] = time.perf_counter() - start

    start = time.perf_counter()
    try:
        with torch.no_grad():
            exported = torch.export.export(rewritten, (example,), strict=False)
    except Exception as e:  # torch.export raises many unrelated types
        raise ExportError(f"torch.export could not capture the rewritten {type(model).__name__} for input "
                          f"{tuple(example.shape)}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    if quantize is not None:
        seconds["export"] = time.perf_counter() - start
        start = time.perf_counter()
        exported = quantize(exported, example)
        seconds["quantize"] = time.perf_counter() - start
        start = time.perf_counter()
    if _calls_any(exported, _SCALAR_DECOMPOSITIONS):  # a full re-trace: 5 s on 560m, so only when needed
        exported = exported.run_decompositions(_SCALAR_DECOMPOSITIONS)
    to_core_aten(exported)  # so that to_edge has nothing left to decompose and skips a re-trace
    seconds["export"] = seconds.get("export", 0.0) + time.perf_counter() - start

    start = time.perf_counter()
    from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower

    from vmf_deploy.export.edge_passes import idle_edge_passes_skipped
    from vmf_deploy.export.functional_program import functionalisation_skipped
    from vmf_deploy.export.xnnpack_partitioner import CheckedXnnpackPartitioner
    from vmf_deploy.export.xnnpack_passes import idle_passes_skipped

    try:
        with (shared_provenance(), functionalisation_skipped(exported), idle_edge_passes_skipped(),
              idle_passes_skipped()):
            edge = to_edge_transform_and_lower(exported, partitioner=[CheckedXnnpackPartitioner()])
    except Exception as e:  # executorch raises untyped errors naming the op
        raise ExportError(f"ExecuTorch lowering (to_edge_transform_and_lower, XNNPACK) failed: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    seconds["lower"] = time.perf_counter() - start
    summary = delegation_summary(edge.exported_program().graph_module)
    if quantize is not None:
        from vmf_deploy.quantize.pt2e_xnnpack import compute_precision

        summary["precision"] = compute_precision(edge.exported_program().graph_module, COMPUTE_OPS)
    if options["require_full_delegation"] and summary["portable_compute_ops"]:
        counts = ", ".join(f"{op} ×{summary['by_op'][op]['portable']}" for op in summary["portable_compute_ops"])
        raise ExportError(
            f"{summary['compute_ops']['portable']} compute op(s) were not delegated to XNNPACK and would run in "
            f"ExecuTorch's portable kernels: {counts} ({summary['compute_ops_delegated_pct']:.1f}% delegated). "
            "XNNPACK takes only 4D tensors and 1D/2D convs; a Conv3d or a rank-5 op left in the model causes this "
            f"(were the executorch rewrites skipped?). To accept the fallback set [executorch] "
            f"require_full_delegation = false in {where}.")

    start = time.perf_counter()
    try:
        with shared_provenance():
            program = edge.to_executorch(ExecutorchBackendConfig(
                extract_delegate_segments=options["extract_delegate_segments"],
                memory_planning_pass=_memory_planning_pass(options)))
        buffer = program.buffer
    except Exception as e:
        raise ExportError(f"ExecuTorch serialisation (to_executorch) failed: {type(e).__name__}: {e}; "
                          f"check [executorch] memory planning in {where}") from None
    seconds["serialize"] = time.perf_counter() - start
    return ExecuTorchProgram(buffer=buffer, delegation=summary, rewrites=applied, seconds=seconds, options=options)


LAYER_DIFF_METHOD = "torchao numeric debugger: PyTorch's simulation of the int8 program against the float one"


def lower(job: LoweringJob) -> Lowered:
    """The ``executorch`` target: :func:`lower_to_executorch` (PT2E int8 when quantized), then save the ``.pte``."""
    steps, quant = job.steps, job.quant
    if steps.progress:
        steps.progress("lower", None)
    quantize = None
    if quant:
        from vmf_deploy.quantize.pt2e_xnnpack import (
            fp32_module_paths,
            fp32_op_type_nodes,
            output_nodes,
            quantize_exported,
        )

        def quantize(exported: Any, example: torch.Tensor) -> Any:
            if quant.options["fp32_outputs"]:
                quant.summary["fp32_output_nodes"] = output_nodes(exported.graph)
            kept_ops = fp32_op_type_nodes(exported.graph, quant.options, quant.classes)
            quant.summary["fp32_op_type_nodes"] = dict(sorted(Counter(kept_ops.values()).items()))
            qat_record: dict = {}
            program, quant.layers = quantize_exported(exported, example, quant.calibration.clips, quant.options,
                                                      quant.classes, qat_clips=quant.qat.clips if quant.qat else (),
                                                      qat_record=qat_record)
            if quant.qat:
                quant.summary["qat"] = {**qat_record, "source": quant.qat.source, "sha256": quant.qat.sha256}
            return program

        quant.layer_diff_method = LAYER_DIFF_METHOD
        quant.summary = {"scheme": "torchao PT2E, XNNPACKQuantizer symmetric (int8 weights and activations)",
                         "per_channel": quant.options["per_channel"],
                         "calibration_method": quant.options["calibration_method"],
                         "fp32_op_types": quant.options["fp32_op_types"],
                         "fp32_module_paths": fp32_module_paths(quant.classes, quant.options["fp32_modules"]),
                         "fp32_outputs": quant.options["fp32_outputs"],
                         "kept_linears": quant.options["kept_linears"],
                         "fp32_output_weights": quant.options["fp32_output_weights"],
                         "dyrelu_application": quant.options["dyrelu_application"],
                         "quantize_input": quant.options["quantize_input"]}
    program = lower_to_executorch(job.model, torch.zeros(job.shape), job.recipe, fuse=job.fuse, quantize=quantize)
    if quant:
        quant.summary.update(program.delegation.pop("precision"))
    for name, seconds in program.seconds.items():
        steps.record({"export": "trace", "serialize": "serialize"}.get(name, name), seconds)
    with steps("save"):
        program.save(job.staged)
    return Lowered(rewrites=program.rewrites, delegation=program.delegation)
