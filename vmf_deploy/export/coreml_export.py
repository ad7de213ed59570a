"""CoreML path: ``torch.export`` → ``run_decompositions({})`` → ``coremltools.convert`` → ML Program.

CoreML models convert anywhere but run only on macOS. On Linux the saved
``.mlpackage`` is validated by reading its spec back (inputs, outputs, op list,
precision per op); the parity record then says the runtime check was not run.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from vmf_deploy.export.errors import ExportError, exporter_failure
from vmf_deploy.export.lowering import Lowered, LoweringJob
from vmf_deploy.export.targets import INPUT_NAME, OUTPUT_NAME

# MIL protobuf DataType values of the op outputs we count (coremltools/proto/MIL.proto).
_MIL_FLOAT16, _MIL_FLOAT32 = 10, 11


def coreml_runs_here() -> bool:
    """True where the Core ML runtime exists (macOS)."""
    return sys.platform == "darwin"


@contextlib.contextmanager
def _quiet_coremltools():
    """Hide coremltools' tqdm progress bars and its import-time notices."""
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    pytree_log = logging.getLogger("torch.utils._pytree")  # torchao's import-time deprecation notice
    level = pytree_log.level
    pytree_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        pytree_log.setLevel(level)
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


def import_coremltools():
    """Import coremltools (slow, ~10 s) without its console noise."""
    with _quiet_coremltools():
        import coremltools as ct
    return ct


def capture(model: torch.nn.Module, input_shape: tuple[int, ...], recipe_path: Path) -> torch.export.ExportedProgram:
    """``torch.export`` at the static ``input_shape``, decomposed to the core ATen set coremltools reads."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pytree deprecation notices from torch.export
            program = torch.export.export(model, (torch.zeros(input_shape),))
            return program.run_decompositions({})
    except Exception as e:  # torch.export raises many types (UserError, Unsupported, ...)
        raise exporter_failure("coreml", e, f"{recipe_path} [coreml]") from None


def nodes_in_modules(program: torch.export.ExportedProgram, class_names: list[str]) -> set[str]:
    """Names of graph nodes traced inside a module whose class name contains one of ``class_names``."""
    keep = set()
    for node in program.graph.nodes:
        for _path, cls in (node.meta.get("nn_module_stack") or {}).values():
            name = cls.__name__ if isinstance(cls, type) else str(cls).rsplit(".", 1)[-1]
            if any(c in name for c in class_names):
                keep.add(node.name)
                break
    return keep


_FP32_TAG, _FP16_TAG = "fp32__", "fp16__"


def _tag_node_names(program: torch.export.ExportedProgram, keep: set[str]) -> None:
    """Prefix every compute node's name with its precision tag, so MIL op names say which module they came from.

    Without the tags, names coremltools invents for decomposed ops (``softmax_1``) collide with
    traced node names. Graph inputs and the nodes the graph returns keep their names.
    """
    output = next(node for node in program.graph.nodes if node.op == "output")
    returned = {node.name for node in _flat(output.args)}
    for node in program.graph.nodes:
        if node.op == "call_function" and node.name not in returned:
            node._rename((_FP32_TAG if node.name in keep else _FP16_TAG) + node.name)
    program.graph_module.recompile()


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value] if isinstance(value, torch.fx.Node) else []


def convert(program: torch.export.ExportedProgram, input_shape: tuple[int, ...], options: dict[str, Any],
            precision: str, recipe_path: Path) -> tuple[Any, int]:
    """Convert to an ML Program; return the MLModel and how many ops were kept fp32 under fp16.

    Under ``precision="fp16"`` every op traced inside a ``[coreml].fp32_modules`` class stays fp32
    (coremltools' ``FP16ComputePrecision(op_selector=...)``), everything else is cast to fp16.
    """
    ct = import_coremltools()
    if precision == "fp16":
        keep = nodes_in_modules(program, options["fp32_modules"])
        if options["fp32_modules"] and not keep:
            raise ExportError(f"no op of the model was traced inside {options['fp32_modules']} "
                              f"([coreml].fp32_modules in {recipe_path}), so nothing would stay fp32; "
                              "fix the class names or set fp32_modules = [] to run every op in fp16")
        _tag_node_names(program, keep)
        kept: set[str] = set()
        memo: dict[int, bool] = {}

        def in_fp32_module(op: Any) -> bool:
            # MIL ops keep their (tagged) torch node's name; the extra ops coremltools creates when it
            # decomposes one node (SDPA → matmul/softmax/matmul before iOS18) get fresh untagged names and
            # feed that node's last op: follow their consumers to the first tagged op.
            if op.name.startswith((_FP32_TAG, _FP16_TAG)):
                return op.name.startswith(_FP32_TAG)
            if id(op) not in memo:
                memo[id(op)] = any(in_fp32_module(child) for out in op.outputs for child in out.child_ops)
            return memo[id(op)]

        def stays_fp16(op: Any) -> bool:
            if in_fp32_module(op):
                kept.add(op.name)
                return False
            return True

        compute_precision = ct.transform.FP16ComputePrecision(op_selector=stays_fp16)
    else:
        compute_precision = ct.precision.FLOAT32
    try:
        with _quiet_coremltools():
            mlmodel = ct.convert(
                program,
                inputs=[ct.TensorType(name=INPUT_NAME, shape=tuple(input_shape))],
                outputs=[ct.TensorType(name=OUTPUT_NAME)],
                convert_to=options["convert_to"],
                minimum_deployment_target=getattr(ct.target, options["minimum_deployment_target"]),
                compute_units=getattr(ct.ComputeUnit, options["compute_units"]),
                compute_precision=compute_precision,
            )
    except Exception as e:  # coremltools raises NotImplementedError, ValueError, RuntimeError, ...
        raise exporter_failure("coreml", e, f"{recipe_path} [coreml].minimum_deployment_target") from None
    return mlmodel, len(kept) if precision == "fp16" else 0


def save_mlpackage(mlmodel: Any, path: Path) -> None:
    """Write the ``.mlpackage`` directory."""
    with _quiet_coremltools():
        mlmodel.save(str(path))


def _shape(feature: Any) -> list[int]:
    return [int(d) for d in feature.type.multiArrayType.shape]


def validate_mlpackage(path: Path, input_shape: tuple[int, ...], num_classes: int) -> dict[str, Any]:
    """Read the saved package's spec back (no Core ML runtime needed) and check its contract.

    Checks: an ML Program with one input ``video`` of ``input_shape`` and one output ``logits``
    of ``(1, num_classes)``. Returns the op counts (``const`` excluded) and how many op outputs
    are fp16 and fp32.
    """
    ct = import_coremltools()
    try:
        with _quiet_coremltools():
            spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    except Exception as e:  # a corrupt package raises from protobuf or the loader
        raise ExportError(f"the saved {path.name} cannot be read back by coremltools ({e})") from None
    if spec.WhichOneof("Type") != "mlProgram":
        raise ExportError(f"{path.name} is a {spec.WhichOneof('Type')}, not an ML Program")
    inputs = [(f.name, _shape(f)) for f in spec.description.input]
    outputs = [(f.name, _shape(f)) for f in spec.description.output]
    want_in, want_out = [(INPUT_NAME, list(input_shape))], [(OUTPUT_NAME, [input_shape[0], num_classes])]
    if inputs != want_in or outputs != want_out:
        raise ExportError(f"{path.name} has inputs {inputs} and outputs {outputs}; expected {want_in} and {want_out}")
    ops: Counter[str] = Counter()
    dtypes: Counter[str] = Counter()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type == "const":
                    continue
                ops[op.type] += 1
                for out in op.outputs:
                    dt = out.type.tensorType.dataType
                    dtypes["fp16" if dt == _MIL_FLOAT16 else "fp32" if dt == _MIL_FLOAT32 else "other"] += 1
    return {"nodes": sum(ops.values()), "op_types": dict(ops.most_common()), "output_dtypes": dict(dtypes)}


NOT_RUN = "not run: CoreML runtime needs macOS"
"""The parity record's status where the Core ML runtime does not exist."""


def lower(job: LoweringJob) -> Lowered:
    """The ``coreml`` target: module rewrites → capture → convert (→ weight compression) → save → validate."""
    from vmf_deploy.rewrites import run_rewrites

    steps, quant = job.steps, job.quant
    with steps("rewrite"):
        rewritten, applied = run_rewrites("coreml", "module", job.model, fuse=job.fuse)
    with steps("trace"):
        program = capture(rewritten, job.shape, job.recipe.path)
    with steps("lower"):
        compute = "fp32" if quant else job.precision  # weight compression applies to the fp32 program
        mlmodel, kept_fp32 = convert(program, job.shape, job.recipe.options, compute, job.recipe.path)
    if quant:
        from vmf_deploy.quantize.coreml_weights import compress_weights

        with steps("quantize"):
            mlmodel, quant.summary = compress_weights(mlmodel, job.precision, quant.options)
    with steps("save"):
        save_mlpackage(mlmodel, job.staged)
    with steps("validate"):
        graph = validate_mlpackage(job.staged, job.shape, int(job.model.cfg.num_classes))
    graph["ops_kept_fp32"] = kept_fp32
    return Lowered(rewrites=applied, graph=graph, options={**job.recipe.options, "compute_precision": job.precision},
                   parity_not_run=None if coreml_runs_here() else NOT_RUN)
