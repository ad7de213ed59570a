"""The parity gate's PyTorch reference logits, computed once per model and clips, then read from disk.

Every gated target of one export runs the same reference (the unrewritten fp32 model in eager
PyTorch) on the same clips: ``--target all`` ran it three times, and at 64 frames it is most of
the gate (VMF-5G: 8.5 s of the reference against 4.8 s in onnxruntime for the 9 clips). The
logits are stored under a key that hashes everything they depend on: the model's class, config
and every parameter and buffer (names, dtypes, shapes, bytes), the clips' bytes, and the torch
version. A different model, checkpoint, clip or torch gives another key; an unreadable or
mismatched file is recomputed. ``VMF_REFERENCE_CACHE=off`` turns the cache off.

The cache lives in ``$VMF_CACHE/reference-logits`` (else ``~/.cache/vmf-deploy/reference-logits``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from vmf_deploy.atomic import atomic_output

SWITCH_ENV = "VMF_REFERENCE_CACHE"
"""``off`` (or ``0``/``false``/``no``) turns the cache off."""
FOLDER = "reference-logits"


def enabled() -> bool:
    """Whether the cache is on (``VMF_REFERENCE_CACHE`` is not ``off``/``0``/``false``/``no``)."""
    return os.environ.get(SWITCH_ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def cache_folder() -> Path:
    """``$VMF_CACHE/reference-logits``, else ``$XDG_CACHE_HOME/vmf-deploy/…``, else ``~/.cache/vmf-deploy/…``."""
    from vmf_deploy.cross_build import cache_dir

    return cache_dir() / FOLDER


def reference_key(model: torch.nn.Module, clips: Sequence[np.ndarray]) -> str:
    """A sha256 over the model (class, config, every parameter and buffer), the clips and the torch version."""
    digest = hashlib.sha256()
    cfg = getattr(model, "cfg", None)
    digest.update(f"{type(model).__module__}.{type(model).__qualname__}|{cfg!r}|torch {torch.__version__}".encode())
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        value = tensor.detach().contiguous().cpu()
        digest.update(f"|{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().data if value.numel() else b"")
    for clip in clips:
        array = np.ascontiguousarray(clip)
        digest.update(f"|clip|{array.dtype}|{array.shape}|".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _read(path: Path, count: int) -> list[np.ndarray] | None:
    """The stored logits, or None when the file is missing, unreadable or holds the wrong number of arrays."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            logits = [stored[f"clip{i}"] for i in range(count)]
            if len(stored.files) != count:
                return None
    except (OSError, KeyError, ValueError, EOFError):
        return None
    return logits


def cached_reference(model: torch.nn.Module, clips: Sequence[np.ndarray],
                     compute: Callable[[torch.nn.Module, Sequence[np.ndarray]], list[np.ndarray]]
                     ) -> tuple[list[np.ndarray], bool]:
    """``compute(model, clips)``, or what it returned before for the same model and clips.

    Returns the logits and whether they came from the cache. Storing is best-effort: a cache
    folder that cannot be written leaves the result computed and unchanged.
    """
    if not enabled():
        return compute(model, clips), False
    path = cache_folder() / f"{reference_key(model, clips)}.npz"
    stored = _read(path, len(clips))
    if stored is not None:
        return stored, True
    logits = compute(model, clips)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **{f"clip{i}": np.asarray(x) for i, x in enumerate(logits)})
    except OSError:
        pass
    return logits, False
