"""Training-time augmentation of normalised clips ``(B, 3, T, H, W)``: label-aware flips, shifts, jitter, time.

A mirror changes the class of direction-bearing actions (left becomes right), so it is applied
only with a label map that says how (:attr:`SyntheticSource.hflip`); a dataset without one is
never mirrored.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def augment(clips: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
            hflip: Sequence[int] | None = None, max_shift: float = 0.08, jitter: float = 0.15,
            temporal_shift: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A randomly augmented copy of a batch and its (possibly remapped) labels.

    * spatial: a random translation of up to ``max_shift`` of the side (reflect-padded), per clip;
    * photometric: brightness and contrast scaled by ``1 ± jitter`` in normalised units, per clip;
    * temporal: the clip shifted by up to ``temporal_shift`` frames (edge frames repeated), per clip;
    * mirror: left-right, with ``hflip[label]`` the new label, when ``hflip`` is given.
    """
    b, _, t, h, w = clips.shape
    out = torch.empty_like(clips)
    labels = labels.clone()
    pad = max(int(round(max_shift * min(h, w))), 0)
    padded = F.pad(clips.flatten(1, 2), (pad, pad, pad, pad), mode="reflect").view(b, 3, t, h + 2 * pad, w + 2 * pad)
    for i in range(b):
        dy, dx = (torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist() if pad else (0, 0))
        clip = padded[i, :, :, dy:dy + h, dx:dx + w]
        if temporal_shift and t > 2:
            s = int(torch.randint(-temporal_shift, temporal_shift + 1, (1,), generator=generator))
            index = (torch.arange(t) + s).clamp(0, t - 1)
            clip = clip[:, index]
        if hflip is not None and torch.rand(1, generator=generator).item() < 0.5:
            clip = clip.flip(-1)
            labels[i] = hflip[int(labels[i])]
        scale, offset = 1 + jitter * (2 * torch.rand(2, generator=generator) - 1)
        mean = clip.mean()
        out[i] = (clip - mean) * scale + mean * offset
    return out, labels
