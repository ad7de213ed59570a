"""Quantization-aware fine-tuning by distillation: the recipe's ``qat_steps`` on the ExecuTorch int8 path.

Post-training int8 rounds every activation to one calibrated range, and nothing in the weights
knows it. Here the quantizer's observers are wrapped in fake-quantize modules (``prepare_qat_pt2e``),
calibrated on the calibration clips as usual, then frozen, and the weights are fine-tuned so that
the fake-quantized program's logits match the float program's on clips of the calibration source
(mean squared error, Adam, one clip per step; gradients pass the rounding straight through). The teacher is the
model itself in fp32, so no labels are needed, and the loss is the error the int8 gate measures.
The ranges stay those of calibration: ``convert_pt2e`` then folds the fine-tuned weights with the
same scales the training saw.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .pt2e_layer_diff import clip_tensor

SEED = 0
"""Seeds the order the clips are visited in, so a rebuilt program (``vmf_deploy.numerics``) gets the same weights."""
PROBE_CLIPS = 64
"""The clips (the first ones) on which the error before and after is measured for the manifest."""


def fake_quant_spec(spec: Any) -> Any:
    """``spec`` (a ``QuantizationSpec``, or ``None``) with its observer wrapped in a ``FakeQuantize``."""
    from torchao.quantization.pt2e.fake_quantize import FakeQuantize

    if spec is None:
        return None
    return replace(spec, observer_or_fake_quant_ctr=FakeQuantize.with_args(observer=spec.observer_or_fake_quant_ctr))


def fake_quant_config(config: Any) -> Any:
    """A ``QuantizationConfig`` whose activations and weights are fake-quantized when the model runs (QAT)."""
    return replace(config, input_activation=fake_quant_spec(config.input_activation),
                   output_activation=fake_quant_spec(config.output_activation), weight=fake_quant_spec(config.weight),
                   is_qat=True)


def freeze_ranges(prepared: torch.nn.Module) -> None:
    """Stop every fake-quantize module of ``prepared`` from observing: the ranges calibration found stay."""
    from torchao.quantization.pt2e.fake_quantize import FakeQuantizeBase

    for module in prepared.modules():
        if isinstance(module, FakeQuantizeBase):
            module.disable_observer()


def own_parameters(model: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of ``model`` that shares no parameter with it.

    ``ExportedProgram.module()`` hands every call the program's own parameter tensors (those of the
    model it captured): fine-tuning them in place would change the float reference too.
    """
    return copy.deepcopy(model)


def logits(output: torch.Tensor | tuple | list) -> torch.Tensor:
    """A program's logits: its output, or its first output when it returns more (a program rebuilt with
    its block outputs by :mod:`vmf_deploy.numerics`)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def mean_squared_error(student: torch.nn.Module, clips: Sequence[np.ndarray], targets: Sequence[torch.Tensor]) -> float:
    """Mean over ``clips`` of the squared error of ``student``'s logits against ``targets``."""
    with torch.no_grad():
        return float(np.mean([torch.nn.functional.mse_loss(logits(student(clip_tensor(c))), t).item()
                              for c, t in zip(clips, targets, strict=True)]))


def distill(prepared: torch.fx.GraphModule, teacher: torch.nn.Module, clips: Sequence[np.ndarray], steps: int,
            learning_rate: float) -> dict:
    """Fine-tune ``prepared`` (fake-quantized, calibrated, ranges frozen) to give ``teacher``'s logits on ``clips``.

    ``steps`` Adam steps of one clip each, the clips visited in a seeded random order (all of them
    before any twice). Returns the manifest's record: steps, learning rate, clips, the mean squared
    logit error before and after (on the first :data:`PROBE_CLIPS` clips), and the seconds it took.
    """
    if steps < 1 or not clips:
        raise ValueError(f"distill needs at least one step and one clip, got {steps} steps and {len(clips)} clips")
    start = time.perf_counter()
    with torch.no_grad():
        targets = [logits(teacher(clip_tensor(c))) for c in clips]
    probe = slice(0, PROBE_CLIPS)
    before = mean_squared_error(prepared, clips[probe], targets[probe])
    weights = [p for p in prepared.parameters() if p.is_floating_point()]
    for p in weights:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(weights, lr=learning_rate)
    rng = np.random.default_rng(SEED)
    order = np.concatenate([rng.permutation(len(clips)) for _ in range(-(-steps // len(clips)))])[:steps]
    with torch.enable_grad():
        for index in order:
            loss = torch.nn.functional.mse_loss(logits(prepared(clip_tensor(clips[index]))), targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    for p in weights:
        p.requires_grad_(False)
    return {"steps": steps, "learning_rate": learning_rate, "clips": len(clips), "loss": "logit mean squared error",
            "mse_before": before, "mse_after": mean_squared_error(prepared, clips[probe], targets[probe]),
            "seconds": round(time.perf_counter() - start, 1)}
