"""Phone backends: ``android`` (adb + the native runner) and ``ios`` (Xcode's devicectl + a bench app).

Both run the ExecuTorch-XNNPACK ``.pte`` the harness exports, with the same warm-up, runs and
threads as the host backends, pull back the ``vmf-deploy/bench`` document the device wrote
and the logits of the parity clips, and turn them into one result row here (FLOPs and the
parity against PyTorch are computed on the host).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...parity import compare_logits
from .. import schema

if TYPE_CHECKING:
    from ..harness import Harness, Reference


def run_on_device(backend: str, variant: str, harness: "Harness") -> dict:
    """Measure ``variant`` on the connected phone of ``backend`` (a ``skipped`` result when none is usable)."""
    if backend == "android":
        from .android import run_android

        return run_android(variant, harness)
    if backend == "ios":
        from .ios import run_ios

        return run_ios(variant, harness)
    raise ValueError(f"unknown device backend {backend!r}")


def write_raw_clips(ref: "Reference", out_dir: Path) -> list[Path]:
    """The reference's parity clips as raw little-endian float32 files (the native runner's ``--input-raw``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, npy in enumerate(ref.clip_files):
        path = out_dir / f"clip{i}.raw"
        np.load(npy).astype("<f4").tofile(path)
        paths.append(path)
    return paths


def read_raw_logits(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Logits written by the native runner's ``--output-raw`` (float32), checked against ``shape``."""
    data = np.fromfile(path, dtype="<f4")
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path.name} holds {data.size} floats, expected {int(np.prod(shape))} for logits {shape}")
    return data.reshape(shape)


def device_result(backend: str, variant: str, ref: "Reference", artifact: Path, doc: dict,
                  logits: list[np.ndarray] | None) -> dict:
    """One result row from a device's results document plus the logits of the parity clips (None: no parity)."""
    from ..harness import REFERENCE, empty_result, latency_stats

    schema.validate(doc)
    if not doc["results"]:
        raise ValueError("the device's results document has no result")
    measured = doc["results"][0]
    if measured["status"] != "ok":
        return empty_result(backend, variant, measured["status"], measured["threads"])
    lat = latency_stats(measured["latency_ms"]["samples"])
    size = measured["artifact"]["size_bytes"] if measured["artifact"] else artifact.stat().st_size
    result = empty_result(backend, variant, "ok", measured["threads"])
    result.update({
        "device": doc["device"]["name"], "device_info": doc["device"], "input_shape": list(ref.input_shape),
        "params": ref.params, "flops": ref.flops,
        "artifact": {"path": str(artifact), "format": artifact.suffix.lstrip("."), "size_bytes": size,
                     "precision": "fp32"},
        "load_ms": measured["load_ms"], "latency_ms": lat, "clips_per_s": 1e3 / lat["median"],
        "gflops_per_s": ref.flops / 1e9 / (lat["median"] / 1e3), "memory": measured["memory"],
    })
    if logits is not None:
        result["parity"] = {"reference": REFERENCE, "seeds": list(ref.seeds),
                            **compare_logits(ref.logits, logits).to_dict()}
    return result
