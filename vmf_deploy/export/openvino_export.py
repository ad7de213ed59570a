"""OpenVINO path: the ONNX graph without onnxruntime's fusions → ``openvino.convert_model`` → IR (``.xml`` + ``.bin``).

Why through ONNX, and unfused: ``benchmarks/openvino_routes.py`` converted VMF-560M at 16 frames
four ways (docs/openvino.md has the table). The ONNX graph with only the required rewrites gave
the fewest OpenVINO ops and the fastest compiled model; the ``--target onnx`` graph (banded
depthwise weights and channels-first softmaxes, chosen for onnxruntime) was slower in OpenVINO,
and so were ``torch.export`` and OpenVINO's own tracing of the ``nn.Module`` read by its PyTorch
frontend. The ONNX export also reuses the exporter, simplifier and checks of the ``onnx`` target.

The recipe's compile options (``export/openvino.toml``) are saved in the IR's runtime info,
where the ``openvino-cpu`` / ``openvino-gpu`` runners read them. OpenVINO is imported inside
the functions.

``--precision fp16`` saves the weights as fp16 (``ov.save_model(compress_to_fp16=True)``): half
the ``.bin``, computed at the recipe's ``precision_hint`` (f32 on CPUs without fp16 units, where
the plugin widens the weights at compile time). ``--precision int8`` quantizes the fp32 model with
NNCF (:mod:`vmf_deploy.quantize.nncf_openvino`) before saving it.

``[openvino] input_layout = "NTHWC"`` gives the IR a channels-last input ``(1, T, H, W, 3)``:
OpenVINO's ``PrePostProcessor`` declares the tensor ``NDHWC`` over the model's ``NCDHW``, so the
CPU plugin's stem convolution, which runs channels-last, reads the clip as it comes instead of
first reordering the whole planar clip (docs/openvino.md has the measurements). The input
conv split (:mod:`vmf_deploy.rewrites.input_conv_split`), which removes that reorder for planar
input, is then left out. The layout is saved in the IR's runtime info
(:data:`~vmf_deploy.runners.openvino_cpu.INPUT_LAYOUT_KEY`) and in the manifest, whose
preprocessing then writes channels-last clips.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections import Counter
from typing import Any

from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.lowering import Lowered, LoweringJob
from vmf_deploy.quantize.onnx_modules import scope_modules
from vmf_deploy.rewrites.input_conv_split import InputConvChannelSplit
from vmf_deploy.runners.openvino_cpu import COMPILE_OPTIONS_KEY, INPUT_LAYOUT_KEY

COMPILE_OPTION_NAMES = {
    "precision_hint": "INFERENCE_PRECISION_HINT",
    "performance_hint": "PERFORMANCE_HINT",
    "num_streams": "NUM_STREAMS",
    "inference_num_threads": "INFERENCE_NUM_THREADS",
}
"""``[openvino]`` recipe key → the OpenVINO property it sets at compile time."""
DIFF_CLIPS = 4
"""Calibration clips the per-layer diff of an int8 IR runs on."""
OPENVINO_LAYOUTS = {"NCTHW": "NCDHW", "NTHWC": "NDHWC"}
"""``input_layout`` → OpenVINO's name for it."""


def compile_config(options: dict[str, Any]) -> dict[str, str]:
    """The OpenVINO compile properties of a validated ``[openvino]`` table (``inference_num_threads = 0``: unset)."""
    config = {prop: str(options[key]) for key, prop in COMPILE_OPTION_NAMES.items() if key in options}
    if config.get("INFERENCE_NUM_THREADS") == "0":
        del config["INFERENCE_NUM_THREADS"]
    return config


def op_counts(ov_model: Any) -> dict[str, int]:
    """Op count per op type of an ``ov.Model`` (Parameter, Constant and Result included), most frequent first."""
    return dict(Counter(op.get_type_name() for op in ov_model.get_ordered_ops()).most_common())


def with_input_layout(ov_model: Any, layout: str) -> Any:
    """A copy of ``ov_model`` taking its input in ``layout`` (``PrePostProcessor``: the transpose joins the IR).

    A copy, because the int8 per-layer diff still runs the quantized model on planar clips.
    """
    import openvino as ov

    if layout == "NCTHW":
        return ov_model
    ppp = ov.preprocess.PrePostProcessor(ov_model.clone())
    ppp.input().tensor().set_layout(ov.Layout(OPENVINO_LAYOUTS[layout]))
    ppp.input().model().set_layout(ov.Layout(OPENVINO_LAYOUTS["NCTHW"]))
    ov_model = ppp.build()
    ov_model.set_rt_info(layout, list(INPUT_LAYOUT_KEY))
    return ov_model


def _quantize(ov_model: Any, proto: Any, scopes: dict[str, str], job: LoweringJob) -> Any:
    """int8: ``nncf.quantize`` the fp32 IR on the calibration clips; the per-layer diff is computed if the gate asks.

    ``proto`` is the ONNX graph the IR was converted from, ``scopes`` the exporter's node scopes.
    """
    from vmf_deploy.quantize.nncf_openvino import LAYER_DIFF_METHOD, op_modules, openvino_layer_diff, quantize_openvino

    quant = job.quant
    with job.steps("quantize"):
        modules = op_modules(ov_model, proto, scopes, set(quant.classes))
        quantized, quant.summary = quantize_openvino(ov_model, proto, modules, quant.calibration.clips,
                                                     quant.options, quant.classes)
    quant.layer_diff_method = LAYER_DIFF_METHOD
    quant.layer_diff = lambda: openvino_layer_diff(ov_model, quantized, modules, quant.calibration.clips[:DIFF_CLIPS])
    return quantized


def lower(job: LoweringJob) -> Lowered:
    """The ``openvino`` target: module rewrites → ONNX (dynamo export, onnxsim) → ``convert_model`` (→ int8 with
    NNCF) → the recipe's input layout → save the IR (weights compressed to fp16 for ``--precision fp16``)."""
    import openvino as ov

    from vmf_deploy.export import onnx_export
    from vmf_deploy.rewrites import run_rewrites

    options, steps, staged = job.recipe.options, job.steps, job.staged
    layout = options["input_layout"]
    skip = [InputConvChannelSplit.name] if layout != "NCTHW" else []
    with steps("rewrite"):
        rewritten, applied = run_rewrites("openvino", "module", job.model, fuse=job.fuse, skip=skip)
    with steps("trace"):
        proto = onnx_export.trace_to_onnx(rewritten, job.shape, options["onnx_opset"], job.recipe.path)
    scopes = scope_modules(proto) if job.quant else {}
    with steps("simplify"):
        proto = onnx_export.simplify_onnx(proto, job.recipe.path)
    with steps("rewrite"):
        proto, applied_onnx = run_rewrites("openvino", "onnx", proto, fuse=job.fuse)
    onnx_path = staged.with_name(staged.stem + ".onnx")  # in the export's temp dir: removed with it
    onnx_export.save_onnx(onnx_export.prune_unused(proto), onnx_path)
    with steps("lower"):
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                ov_model = ov.convert_model(str(onnx_path))
        except Exception as e:  # OpenVINO's frontends raise untyped errors
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ExportError(f"openvino.convert_model could not read the ONNX graph: {first[:400]}; change "
                              f"{job.recipe.path} [openvino].onnx_opset or export with --no-fuse") from None
    if job.quant:
        ov_model = _quantize(ov_model, proto, scopes, job)
    ov_model = with_input_layout(ov_model, layout)
    for name, value in compile_config(options).items():
        ov_model.set_rt_info(value, [*COMPILE_OPTIONS_KEY, name])
    with steps("save"):
        ov.save_model(ov_model, str(staged), compress_to_fp16=job.precision == "fp16")
    ops = op_counts(ov_model)
    return Lowered(rewrites=applied + applied_onnx, graph={"nodes": sum(ops.values()), "op_types": ops},
                   input_layout=layout)
