"""Weight-only compression of a converted Core ML ML Program with ``coremltools.optimize.coreml``.

Two schemes, both of which convert, save and read back on Linux (the compressed model is
checked by its spec; running it needs macOS):

* ``"int8"``: linear symmetric int8 weights (``linear_quantize_weights``), per channel or per
  tensor; the weights become ``constexpr_affine_dequantize`` (iOS16/17) or
  ``constexpr_blockwise_shift_scale`` (iOS18) ops.
* ``"palettize8"``: an 8-bit lookup table per weight (``palettize_weights``, k-means or uniform
  clusters); the weights become ``constexpr_lut_to_dense`` ops.

Only weights of more than ``weight_threshold`` (coremltools' default, 2048) elements are
compressed; smaller ones (biases, small layers) stay as converted. Activations keep the
converted precision. W8A8 is not offered: ``linear_quantize_activations`` calibrates by running
``MLModel.predict``, which exists only on macOS, and coremltools' torch-side
``CoreMLQuantizer`` imports ``torch.ao.quantization.quantizer``, which current torch removed.
"""

from __future__ import annotations

from typing import Any

from vmf_deploy.export.coreml_export import _quiet_coremltools
from vmf_deploy.export.errors import ExportError

MODES = ("int8", "palettize8")

# MIL protobuf DataType values of float tensors (coremltools/proto/MIL.proto).
_MIL_FLOATS = (10, 11)  # FLOAT16, FLOAT32


def compress_weights(mlmodel: Any, mode: str, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Compress the weights of ML Program ``mlmodel``; return the new MLModel and its manifest summary.

    ``mode`` is ``"int8"`` (uses ``options["granularity"]``: ``"per_channel"`` or ``"per_tensor"``)
    or ``"palettize8"`` (uses ``options["palettize_mode"]``: ``"kmeans"`` or ``"uniform"``).
    Raises ``ExportError`` on an unknown mode, a model that is not an ML Program, or a
    coremltools failure.
    """
    if mode not in MODES:
        raise ExportError(f"unknown Core ML weight compression mode {mode!r}; expected one of {', '.join(MODES)}")
    kind = mlmodel.get_spec().WhichOneof("Type")
    if kind != "mlProgram":
        raise ExportError(f"Core ML weight compression needs an ML Program (convert_to='mlprogram'), not a {kind}")
    try:
        with _quiet_coremltools():
            import coremltools.optimize.coreml as cto

            if mode == "int8":
                config = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                                     granularity=options["granularity"])
                compress = cto.linear_quantize_weights
                summary = {"scheme": "weight-only linear int8 (coremltools linear_quantize_weights)",
                           "granularity": options["granularity"]}
            else:
                cluster = options["palettize_mode"]
                config = cto.OpPalettizerConfig(nbits=8, mode=cluster)
                compress = cto.palettize_weights
                summary = {"scheme": f"8-bit palettization (coremltools palettize_weights, {cluster})",
                           "nbits": 8, "mode": cluster}
            compressed = compress(mlmodel, cto.OptimizationConfig(global_config=config))
    except Exception as e:  # coremltools raises ValueError (bad config), NotImplementedError, RuntimeError, ...
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ExportError(f"Core ML {mode} weight compression failed: {first[:400]}") from None
    done, kept = _count_weights(compressed)
    return compressed, {**summary, "weight_threshold": config.weight_threshold, "compressed_weights": done,
                        "fp32_or_fp16_weights_kept": kept,
                        "activations": "fp32 or fp16 as converted (weight-only: activations are not quantized)",
                        "runtime": "not run: Core ML needs macOS"}


def _count_weights(mlmodel: Any) -> tuple[int, int]:
    """Count the compressed weights (``constexpr_*`` ops) and the float weights left in the weight file."""
    compressed = kept = 0
    for function in mlmodel.get_spec().mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type.startswith("constexpr_"):
                    compressed += 1
                elif (op.type == "const" and op.outputs[0].type.tensorType.dataType in _MIL_FLOATS
                      and op.attributes["val"].WhichOneof("value") == "blobFileValue"):
                    kept += 1
    return compressed, kept
