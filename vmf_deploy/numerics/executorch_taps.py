"""Block outputs of an ExecuTorch program: the artifact rebuilt with its blocks as extra program outputs.

XNNPACK runs the whole network as one delegate, whose intermediate tensors the runtime cannot
see, so the ``.pte`` itself cannot be tapped. Instead the program is rebuilt the way its manifest
says it was made (model source, frames, recipe, precision and, for int8, the same calibration
clips: the same quantization ranges; with ``qat_steps``, the same fine-tuning clips and seed: the
same weights), with :class:`~vmf_deploy.numerics.taps.TappedModel` around the 4D frames model,
and run in ExecuTorch's runtime. A rebuild that is not the artifact's program would show
wrong numbers, so the tapped program's logits are compared with the artifact's own
(``tapped_logits_db`` in the report): the CI fixture's int8 ``.pte`` is rebuilt bit for bit
(200 dB, the cap), with or without ``qat_steps = 2048`` (docs/int8.md; the rebuild then repeats
the fine-tuning, about 16 minutes on a 2-core VM); the fp32 test requires more than 100 dB. For
int8 that takes the export's channel equalization, its ``fp32_modules`` found under the wrapper's
module paths, and ``fp32_outputs`` applied to the logits alone (the block outputs stay as the
artifact computes them).
"""

from __future__ import annotations

import copy
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
        # the program traces TappedModel, which holds the frames model as ``model``: every module path gains that
        # prefix, and fp32_modules are found by path
        classes = {".".join(filter(None, ("model", name))): type(m).__name__ for name, m in model.named_modules()}
        strength = quantization["recipe"].get("equalize_channels", 0)  # manifests older than the key: none
        if strength:
            from ..quantize.channel_equalization import equalize_channels

            model = copy.deepcopy(model)  # the caller's model is the fp32 reference
            equalize_channels(model, clips.clips, strength)

        def quantize(exported, example):  # noqa: ANN001, ANN202 - executorch_export.Quantize
            return quantize_exported(exported, example, clips.clips, quantization["recipe"], classes, diff_clips=0,
                                     qat_clips=qat_clips, model_outputs=1)[0]  # the logits, not the taps

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
