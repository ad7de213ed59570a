"""ONNX path: ``torch.onnx.export`` (dynamo exporter) → onnxsim → ``onnx.checker``.

Why the dynamo exporter (``torch.export`` + onnxscript) and not the TorchScript one:
measured on VMF-560M at 16 frames (torch 2.13, opset 18), after onnxsim both graphs
have the same compute nodes (31 Conv, 25 Softmax, 25 LayerNormalization), but the
dynamo graph has 796 nodes against 897: it folds every BatchNorm into its Conv
(TorchScript leaves one BatchNormalization), emits ~90 fewer Reshapes and no
Identity/Constant clutter, keeps module-scoped node names, and its output is the
onnx-ir graph the onnxscript rewriter (our ONNX-stage rewrites) is written against.
It is also the exporter PyTorch maintains; the TorchScript exporter is deprecated.
The cost is time: ~8 s against ~1 s for that export.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from vmf_deploy.export import onnx_optimize
from vmf_deploy.export.errors import ExportError, exporter_failure
from vmf_deploy.export.lowering import Lowered, LoweringJob, QuantizationPlan
from vmf_deploy.export.targets import INPUT_NAME, OUTPUT_NAME

DIFF_CLIPS = 4
"""Calibration clips the per-layer diff of a quantized ONNX graph runs on."""
LAYER_DIFF_METHOD = "onnxruntime qdq_loss_debug: the QDQ graph against the fp32 graph in onnxruntime"


@contextlib.contextmanager
def _quiet_exporter():
    """Silence torch.onnx's progress prints, its 'torchvision is not installed' log lines and its deprecation warnings."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def trace_to_onnx(model: torch.nn.Module, input_shape: tuple[int, ...], opset: int, recipe_path: Path):
    """Export ``model`` at the static ``input_shape`` with the dynamo exporter; return the ``onnx.ModelProto``."""
    example = torch.zeros(input_shape)
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(model, (example,), None, opset_version=opset, dynamo=True,
                                        optimize=False, verbose=False, external_data=False)
            onnx_optimize.optimize(program)
            onnx_optimize.name_io(program.model, [INPUT_NAME], [OUTPUT_NAME])
    except Exception as e:  # torch.onnx raises many types; all become one user-facing error
        raise exporter_failure("onnx", e, f"{recipe_path} [onnx].opset") from None
    proto = program.model_proto
    produced = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if produced != opset:
        raise ExportError(f"torch.onnx produced opset {produced}, not the {opset} asked by [onnx].opset in "
                          f"{recipe_path}; the dynamo exporter implements opset >= 18 only: set opset to 18 or more")
    return proto


def simplify_onnx(proto: Any, recipe_path: Path):
    """Run onnx-simplifier (constant folding, shape inference, dead-node removal); return the new proto."""
    import onnxsim

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            simplified, ok = onnxsim.simplify(proto)
    except Exception as e:  # onnxsim raises RuntimeError / ValueError from C++
        raise ExportError(f"onnxsim failed on the exported graph ({str(e).splitlines()[0] if str(e) else e}); "
                          f"set [onnx].simplify = false in {recipe_path} to export without it") from None
    if not ok:
        raise ExportError("onnxsim could not verify that the simplified graph computes what the exported one "
                          f"does; set [onnx].simplify = false in {recipe_path} to export without it")
    return simplified


def prune_unused(proto: Any):
    """Drop nodes and initializers no output depends on (what a graph rewrite leaves behind), with onnx-ir."""
    import onnx_ir as ir
    from onnx_ir.passes.common import RemoveUnusedNodesPass

    model = ir.serde.deserialize_model(proto)
    RemoveUnusedNodesPass()(model)
    return ir.serde.serialize_model(model)


def check_onnx(proto: Any) -> None:
    """``onnx.checker`` with full type/shape inference, and the input/output contract of the manifest."""
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"onnx.checker rejected the graph: {str(e).splitlines()[0]}") from None
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        raise ExportError(f"the ONNX graph has inputs {inputs} and outputs {outputs}; expected "
                          f"[{INPUT_NAME!r}] and [{OUTPUT_NAME!r}]: a rewrite renamed them")


def op_counts(proto: Any) -> dict[str, int]:
    """Node count per op type of the main graph (``domain::Op`` for non-default domains), most frequent first."""
    counts = Counter(f"{n.domain}::{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
                     for n in proto.graph.node)
    return dict(counts.most_common())


def save_onnx(proto: Any, path: Path) -> None:
    """Write the model as one self-contained ``.onnx`` file (no external data)."""
    import onnx

    onnx.save_model(proto, str(path), save_as_external_data=False)


def quantized_skips(quant: QuantizationPlan | None) -> set[str]:
    """The ONNX-stage rewrites an int8 export leaves out: the banded depthwise form unless the recipe's
    ``[quantization] banded_depthwise`` keeps it (its T/kt-times larger weights are folded into the int8 file)."""
    return set() if quant is None or quant.options["banded_depthwise"] else {"onnx_depthwise_conv2d"}


def lower(job: LoweringJob) -> Lowered:
    """The ``onnx`` target: module rewrites → dynamo export → onnxsim → ONNX rewrites → check → save (→ int8 QDQ)."""
    from vmf_deploy.rewrites import run_rewrites

    options, steps, quant, staged = job.recipe.options, job.steps, job.quant, job.staged
    with steps("rewrite"):
        rewritten, applied = run_rewrites("onnx", "module", job.model, fuse=job.fuse)
    with steps("trace"):
        proto = trace_to_onnx(rewritten, job.shape, options["opset"], job.recipe.path)
    if options["simplify"]:
        with steps("simplify"):
            proto = simplify_onnx(proto, job.recipe.path)
    with steps("rewrite"):
        proto, applied_onnx = run_rewrites("onnx", "onnx", proto, fuse=job.fuse, skip=quantized_skips(quant),
                                           choices={"bridges": options["bridges"]})
        proto = prune_unused(proto)
    if options["check"]:
        with steps("check"):
            check_onnx(proto)
    fp32_path = staged.with_name("fp32-" + staged.name) if quant else staged
    with steps("save"):
        save_onnx(proto, fp32_path)
    if quant:
        import onnx

        from vmf_deploy.quantize.layer_diff import onnx_layer_diff
        from vmf_deploy.quantize.onnx_qdq import quantize_onnx

        with steps("quantize"):
            quant.summary = {**quantize_onnx(fp32_path, staged, quant.calibration.clips, quant.options, quant.classes,
                                             staged.parent), "banded_depthwise": quant.options["banded_depthwise"]}
            fp32_path.unlink()
            proto = onnx.load(str(staged))
        quant.layer_diff_method = LAYER_DIFF_METHOD
        quant.layer_diff = lambda: onnx_layer_diff(staged.parent / "prepared.onnx", staged,
                                                   quant.calibration.clips[:DIFF_CLIPS], set(quant.classes),
                                                   staged.parent)
    graph = {"nodes": len(proto.graph.node), "op_types": op_counts(proto)}
    return Lowered(rewrites=applied + applied_onnx, graph=graph)
