"""Bridges → ``torch.nn.functional.scaled_dot_product_attention`` (module stage, CoreML).

coremltools maps ``scaled_dot_product_attention`` to Core ML's fused MIL op of the
same name when the deployment target is iOS18 / macOS15 or newer and no explicit
scale is passed (older targets get the matmul/softmax decomposition, the same
arithmetic); the bridges' scale is SDPA's default ``1/sqrt(head_dim)``, so it is left out. The rewritten bridges compute
exactly the attention of the originals (same scale, same head split) with the feature
map's layout change written once as a transpose of the ``(B, h, c, N)`` view.

ExecuTorch is deliberately not a target: XNNPACK in executorch 1.5.1 has no SDPA
node visitor or partitioner config (only a pass that rebuilds SDPA from a
masked-softmax pattern), so ``to_edge`` decomposes SDPA back into bmm/softmax, now
with a transposed copy of the feature map that the frames layout (``frame_vmf.py``)
avoids by computing ``kv @ attnᵀ`` and ``k @ x``.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from vmf_deploy.models.layers import FormerToMobile, MobileToFormer

from .base import Rewrite, RewriteResult, reclass_modules


class MobileToFormerSDPA(MobileToFormer):
    """:class:`MobileToFormer` whose attention is one ``scaled_dot_product_attention``."""

    def attend(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """The same attention as the parent's, as one fused SDPA (keys = values = the feature map)."""
        kv = kv.transpose(2, 3)  # (B, h, N, c)
        return F.scaled_dot_product_attention(q, kv, kv, scale=sdpa_scale(self.scale, q.shape[-1]))


class FormerToMobileSDPA(FormerToMobile):
    """:class:`FormerToMobile` whose attention is one ``scaled_dot_product_attention``."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The same attention as the parent's, as one fused SDPA."""
        return F.scaled_dot_product_attention(q, k, v, scale=sdpa_scale(self.scale, q.shape[-1]))


def sdpa_scale(scale: float, head_dim: int) -> float | None:
    """``None`` when ``scale`` is SDPA's default ``1/sqrt(head_dim)``, else ``scale``.

    coremltools lowers ``scaled_dot_product_attention`` to Core ML's fused op only when no
    explicit scale is given (the MIL op has no scale input); the bridges' scale is the default.
    """
    return None if math.isclose(scale, 1.0 / math.sqrt(head_dim), rel_tol=1e-12) else scale


SDPA_FORMS = {MobileToFormer: MobileToFormerSDPA, FormerToMobile: FormerToMobileSDPA}


def bridges_to_sdpa(model: nn.Module) -> int:
    """Re-class every bridge of ``model`` (in place) to its SDPA form; return the count.

    The SDPA forms are subclasses with the same parameters, so the swap only changes
    ``forward``.
    """
    return reclass_modules(model, SDPA_FORMS)


class BridgeSDPA(Rewrite):
    """Module-stage rewrite: bridge attention → ``scaled_dot_product_attention`` (Core ML's fused op)."""

    name = "bridge_sdpa"
    stage = "module"
    targets = ("coreml",)

    def apply(self, obj: nn.Module) -> RewriteResult:
        """Return a copy of ``obj`` whose bridges use SDPA, and how many were rewritten."""
        model = copy.deepcopy(obj)
        return RewriteResult(model, bridges_to_sdpa(model))
