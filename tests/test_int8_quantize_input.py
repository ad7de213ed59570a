"""The executorch recipe's ``quantize_input``: the clip is quantized once, and the stem gathers its frames as int8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from xnnpack_int8 import profiled_run, quantized_program

from vmf_deploy.quantize.pt2e_xnnpack import gathered_input
from vmf_deploy.rewrites.frame_layers import FrameConv3d, FrameStackedConv3d, clip_to_frames

SHAPE = (1, 3, 8, 12, 12)  # one clip, NCTHW


class StridedStem(torch.nn.Module):
    """A temporally strided 3×3×3 conv on the clip, then a 1×1 conv. Its taps gather single frames of the clip in the
    frames layout and concatenate them (``frame_layers._frame_taps``), or with ``stacked`` it concatenates each
    output's frames once (``frame_layers.stacked_clip_frames``, the fused stem's form: slices of the clip itself, and a
    conv that feeds a ReLU); ``direct`` also adds a conv of the frames themselves."""

    def __init__(self, direct: bool = False, stacked: bool = False) -> None:
        super().__init__()
        self.stacked = stacked
        conv = torch.nn.Conv3d(3, 8, 3, stride=2, padding=1)
        self.conv = FrameStackedConv3d(conv) if stacked else FrameConv3d(conv)
        self.project = torch.nn.Conv2d(8, 8, 1)
        self.direct = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1) if direct else None

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if self.stacked:
            return self.project(torch.relu(self.conv(clip)))
        frames = clip_to_frames(clip)
        out = self.project(self.conv(frames, 1))
        if self.direct is not None:
            out = out + self.direct(frames[0:4])
        return out


def test_the_gathered_input_is_every_layout_op_and_cat_the_clip_reaches() -> None:
    graph = torch.export.export(StridedStem(), (torch.zeros(SHAPE),), strict=False).module().graph
    layout, cats = gathered_input(next(iter(graph.find_nodes(op="placeholder"))))
    assert len(cats) == 3  # one per temporal tap
    assert {str(n.target).split(".")[1] for n in layout} == {"reshape", "permute", "slice", "pad"}
    assert all(a in layout for cat in cats for a in cat.all_input_nodes)
    mixed = torch.export.export(StridedStem(direct=True), (torch.zeros(SHAPE),), strict=False).module().graph
    assert gathered_input(next(iter(mixed.find_nodes(op="placeholder")))) == ([], [])  # a conv reads the clip too
    stacked = torch.export.export(StridedStem(stacked=True), (torch.zeros(SHAPE),), strict=False).module().graph
    layout, cats = gathered_input(next(iter(stacked.find_nodes(op="placeholder"))))
    assert len(cats) == 1 and {str(n.target).split(".")[1] for n in layout} == {"reshape", "slice", "pad"}


def _profiled(quantize_input: bool, directory: Path, stacked: bool = False) -> tuple[dict[str, int], float, dict]:
    """StridedStem quantized with ``quantize_input``: the XNNPACK ops it runs and its error (``profiled_run``), and
    its convolutions' precision (``compute_precision``)."""
    torch.manual_seed(0)
    model = StridedStem(stacked=stacked).eval()
    rng = np.random.default_rng(0)
    clips = [rng.uniform(-2.0, 2.0, SHAPE).astype(np.float32) for _ in range(8)]
    options = {"per_channel": True, "calibration_method": "minmax", "fp32_modules": [], "fp32_outputs": False,
               "kept_linears": "fp32", "dyrelu_application": "int8", "quantize_input": quantize_input}
    precision, pte = quantized_program(model, clips, options, ("aten.convolution",))
    return (*profiled_run(pte, model, clips, directory), precision)


def test_the_clip_is_converted_once_and_its_frames_copied_as_int8(tmp_path: Path) -> None:
    once, error, _ = _profiled(True, tmp_path / "once")
    per_frame, per_frame_error, _ = _profiled(False, tmp_path / "per_frame")
    assert not any(op.endswith("X32)") for op in once)  # every transpose, slice and pad moves int8
    assert per_frame["Slice (ND, X32)"] >= 6 and per_frame["Transpose (ND, X32)"] == 1  # fp32 frames, fp32 clip
    assert once["Convert (NC)"] == 2  # the clip in, the output out
    assert per_frame["Convert (NC)"] > once["Convert (NC)"]  # every gathered frame converted
    assert error <= 0.05 and per_frame_error <= 0.05
    assert error == pytest.approx(per_frame_error, abs=0.02)


def test_stacked_frames_are_gathered_as_int8_and_transposed_once(tmp_path: Path) -> None:
    ops, error, precision = _profiled(True, tmp_path / "stacked", stacked=True)
    assert not any(op.endswith("X32)") for op in ops)
    # the stacked conv's quantize follows its ReLU, which XNNPACK folds into the int8 conv: both convs count as int8
    assert precision["by_op"]["aten.convolution"] == {"int8": 2, "dynamic_int8": 0, "weight_only_int8": 0, "fp32": 0}
    assert "Convolution (NHWC, F32) IGEMM" not in ops
    # transposes: the stack to NHWC (not each of the 3 taps, and not the clip to frames first), the output to NCHW
    assert ops["Convert (NC)"] == 2 and ops["Transpose (ND, X8)"] == 2
    assert error <= 0.05
