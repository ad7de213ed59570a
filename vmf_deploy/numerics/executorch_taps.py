"""Block outputs of an ExecuTorch program: the artifact rebuilt with its blocks as extra program outputs.

XNNPACK runs the whole network as one delegate, whose intermediate tensors the runtime cannot
see, so the ``.pte`` itself cannot be tapped. Instead the program is rebuilt the way its manifest
says it was made (model source, frames, recipe, precision and, for int8, the same calibration
clips: the same quantization ranges; with ``qat_steps``, the same fine-tuning clips and seed: the
same weights), with :class:`~vmf_deploy.numerics.taps.TappedModel` around the 4D frames model,
and run in ExecuTorch's runtime. Extra outputs can change how XNNPACK fuses
the ops at block boundaries, so a tapped program's logits are compared with the artifact's own
logits too (``tapped_logits_db`` in the report). Known failure: the tapped *int8* 560m program
is refused by XNNPACK at load ("Failed to create StaticConstantPad node ... invalid_parameter",
2026-12-03), which the tool reports as an error; int8 ``.pte`` files are diffed through the
manifest's ``layer_errors`` (torchao's simulation) or their ONNX twin until that is solved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .taps import LOGITS, TappedModel, block_names, to_clip_layout


def rebuild_tapped(manifest: dict, model: torch.nn.Module, work_dir: Path) -> tuple[Path, list[str]]:
    """The artifact of ``manifest`` rebuilt from ``model`` with its block outputs as program outputs."""
    from ..export import executorch_export
    from ..export.recipes import recipe_from_record
    from ..export.targets import get_target

    recipe = recipe_from_record(manifest["export"]["recipe"], get_target("executorch"))
    names = block_names(model)
    shape = tuple(manifest["input"]["shape"])
    quantize = None
    quantization = manifest["export"].get("quantization")
    if quantization:
        from ..preprocess import PreprocessSpec
        from ..quantize.calibration import load_calibration
        from ..quantize.pt2e_xnnpack import quantize_exported

        calibration = quantization["calibration"]
        spec = PreprocessSpec.from_dict(manifest["preprocessing"])
        clips = load_calibration(calibration["source"], spec, calibration["clips"])
        qat = quantization.get("qat")
        qat_clips = load_calibration(qat["source"], spec, qat["clips"]).clips if qat else ()
        classes = {name: type(m).__name__ for name, m in model.named_modules()}

        def quantize(exported, example):  # noqa: ANN001, ANN202 - executorch_export.Quantize
            return quantize_exported(exported, example, clips.clips, quantization["recipe"], classes, diff_clips=0,
                                     qat_clips=qat_clips)[0]

    program = executorch_export.lower_to_executorch(model, torch.zeros(shape), recipe, quantize=quantize,
                                                     wrap=lambda frames: TappedModel(frames, names))
    path = work_dir / ("tapped-" + manifest["artifact"]["file"])
    program.save(path)
    return path, names


def executorch_block_outputs(path: Path, names: list[str], clip: np.ndarray,
                             reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{block: output}`` of a tapped program (:func:`rebuild_tapped`) on ``clip``, in the reference's layout."""
    from executorch.runtime import Runtime

    try:
        method = Runtime.get().load_program(path).load_method("forward")
        outputs = method.execute([torch.from_numpy(np.ascontiguousarray(clip, np.float32))])
    except RuntimeError as e:  # XNNPACK refuses a node of the rebuilt delegate at init
        raise ValueError(f"ExecuTorch could not run {path.name}, the program rebuilt with its block outputs "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); the extra outputs "
                         "changed what XNNPACK was given. Compare the ONNX export of the same model instead, or "
                         "read the manifest's export.quantization.layer_errors (torchao's simulation)") from None
    arrays = [o.numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in outputs]
    found = {LOGITS: arrays[0]}
    for name, array in zip(names, arrays[1:]):
        found[name] = to_clip_layout(array, reference[name].shape)
    return {block: found[block] for block in reference if block in found}
