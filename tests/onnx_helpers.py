"""Helpers of the ONNX rewrite tests: the pipeline's pre-rewrite export, an onnxruntime run, relative error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from vmf_deploy.export import onnx_export

RECIPE = Path(__file__).resolve().parent.parent / "export" / "onnx.toml"

WHOLE_MODEL_VARIANTS = ["560m", *[pytest.param(v, marks=pytest.mark.slow) for v in ("1g", "2g", "5g")]]
"""The variants a whole-model rewrite test runs on: 560m by default, the larger three with ``-m slow`` (their
plain exports cost 80 s of the default run, and test_export_parity already gates each variant's fused export)."""


def export(model: nn.Module, shape: tuple[int, ...], opset: int = 18) -> onnx.ModelProto:
    """What the export pipeline produces before its ONNX-stage rewrites: dynamo export + onnxsim."""
    return onnx_export.simplify_onnx(onnx_export.trace_to_onnx(model, shape, opset, RECIPE), RECIPE)


def run(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The graph's output for input ``video = x`` in onnxruntime CPU, 2 threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return session.run(None, {"video": x})[0]


def rel_error(ref: np.ndarray, out: np.ndarray) -> float:
    """max |out − ref| / max |ref|."""
    return float(np.abs(out - ref).max() / np.abs(ref).max())


def assert_rewrite_matches(module: nn.Module, proto: onnx.ModelProto, rewritten: onnx.ModelProto,
                           x: np.ndarray, tol: float = 1e-5) -> None:
    """The rewritten graph is valid and agrees with PyTorch and with the graph it came from within ``tol``."""
    onnx.checker.check_model(rewritten, full_check=True)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    assert rel_error(ref, run(rewritten, x)) <= tol
    assert rel_error(run(proto, x), run(rewritten, x)) <= tol


class OneBridge(nn.Module):
    """A single bridge with fixed tokens, wrapped to the pipeline's one-input contract."""

    def __init__(self, bridge: nn.Module, tokens: int, token_dim: int) -> None:
        super().__init__()
        self.bridge = bridge
        self.tokens = nn.Parameter(torch.randn(1, tokens, token_dim))
        self.mix = nn.Linear(token_dim, token_dim)  # keeps the queries/keys a computed value, not a constant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        toks = self.mix(self.tokens + x.mean())
        out = self.bridge(x, toks)
        return out if out.dim() == 3 else out.mean(dim=(3, 4))
