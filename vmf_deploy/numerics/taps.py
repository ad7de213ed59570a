"""Block outputs of the PyTorch model: the reference every artifact's blocks are aligned with.

A *block* is ``stem``, each ``blocks.<i>`` and the ``logits``. A block's output is its feature map
(the first element when the module returns ``(x, tokens)``), in the clip layout
``(B, C, T, H, W)``; the frames-in-batch form ExecuTorch runs ``(B·T, C, H, W)`` is brought back
to it by :func:`to_clip_layout`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..parity import snr_db

LOGITS = "logits"


def block_names(model: nn.Module) -> list[str]:
    """``stem``, ``blocks.0`` … ``blocks.<n-1>``: the modules whose outputs are compared (logits come last)."""
    return ["stem"] + [f"blocks.{i}" for i in range(len(model.blocks))]


def _first(output: object) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


class TappedModel(nn.Module):
    """``model`` returning ``(logits, *block outputs)``: forward hooks collect the named modules' outputs.

    Exportable (``torch.export`` runs the hooks while tracing), so the same wrapper gives an
    artifact whose block outputs are graph outputs.
    """

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.names = model, list(names)
        self.cfg = getattr(model, "cfg", None)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Logits, then each named module's output in ``names`` order."""
        seen: dict[str, torch.Tensor] = {}
        handles = [self.model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, _first(out))) for name in self.names]
        try:
            logits = self.model(x)
        finally:
            for handle in handles:
                handle.remove()
        return (logits, *(seen[name] for name in self.names))


def torch_block_outputs(model: nn.Module, clip: np.ndarray) -> dict[str, np.ndarray]:
    """``{block: output}`` of the PyTorch model on ``clip``, in network order, ``logits`` last."""
    names = block_names(model)
    with torch.inference_mode():
        outputs = TappedModel(model.eval(), names)(torch.from_numpy(np.ascontiguousarray(clip, np.float32)))
    arrays = [o.numpy() for o in outputs]
    return dict(zip([*names, LOGITS], arrays[1:] + arrays[:1]))


def to_clip_layout(array: np.ndarray, reference_shape: tuple[int, ...]) -> np.ndarray:
    """``array`` in the reference's layout: frames ``(B·T, C, H, W)`` → ``(B, C, T, H, W)``; same size reshaped."""
    if array.shape == tuple(reference_shape):
        return array
    if array.ndim == 4 and len(reference_shape) == 5:
        b, c, t, h, w = reference_shape
        if array.shape == (b * t, c, h, w):
            return array.reshape(b, t, c, h, w).transpose(0, 2, 1, 3, 4)
    return array.reshape(reference_shape)


def align_by_value(reference: dict[str, np.ndarray], order: Sequence[str], values: dict[str, np.ndarray],
                   logits: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``({block: output}, {block: tensor name})``: each block's output found among an artifact's tensors.

    ``order`` names the candidate tensors in graph order, ``values`` holds them and ``logits`` names the
    artifact's logits. A block's output is, among the candidates after the previous block's with as many
    elements as the PyTorch block output, the one closest to it (highest SQNR); a block with no such
    candidate is left out.
    """
    outputs, chosen, start = {}, {}, 0
    for block, ref in reference.items():
        if block == LOGITS:
            outputs[block], chosen[block] = values[logits], logits
            continue
        best, best_db, best_at = None, -np.inf, start
        for at in range(start, len(order)):
            value = values[order[at]]
            if value.size != ref.size:
                continue
            db = snr_db(float(np.sum(ref.astype(np.float64) ** 2)),
                        float(np.sum((value.reshape(ref.shape).astype(np.float64) - ref) ** 2)))
            if db > best_db:
                best, best_db, best_at = order[at], db, at
        if best is None:
            continue
        outputs[block], chosen[block], start = values[best].reshape(ref.shape), best, best_at + 1
    return outputs, chosen
