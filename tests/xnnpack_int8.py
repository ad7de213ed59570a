"""Quantize a small frames-layout net with the executorch recipe's PT2E path and lower it to XNNPACK."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vmf_deploy.quantize.pt2e_xnnpack import compute_precision, quantize_exported


def quantized_program(model: torch.nn.Module, clips: Sequence[np.ndarray], options: dict,
                      compute_ops: Sequence[str], partitioner: Any = None) -> tuple[dict, bytes]:
    """``model`` calibrated on ``clips`` with the ``[quantization]`` ``options``, lowered to XNNPACK.

    ``partitioner`` defaults to the export's own (``CheckedXnnpackPartitioner``). Returns the lowered
    program's :func:`compute_precision` over ``compute_ops`` and its ``.pte`` bytes.
    """
    from executorch.exir import to_edge_transform_and_lower

    from vmf_deploy.export.xnnpack_partitioner import CheckedXnnpackPartitioner

    example = torch.from_numpy(clips[0])
    classes = {name: type(module).__name__ for name, module in model.named_modules()}
    program, _ = quantize_exported(torch.export.export(model, (example,), strict=False), example, clips, options,
                                   classes, 0)
    edge = to_edge_transform_and_lower(program, partitioner=[partitioner or CheckedXnnpackPartitioner()])
    return compute_precision(edge.exported_program().graph_module, compute_ops), edge.to_executorch().buffer


def profiled_run(pte: bytes, model: torch.nn.Module, clips: Sequence[np.ndarray],
                 directory: Path) -> tuple[dict[str, int], float]:
    """Run the ``.pte`` on ``clips[0]`` with ETDump and on ``clips[1]`` against ``model``.

    Returns the XNNPACK ops it ran (ETDump names, calls per run) and its max error relative to
    PyTorch's largest output. ``directory`` (created) holds the ``.pte`` and the ETDump.
    """
    from executorch.runtime import Runtime

    from vmf_deploy.bench.profile import profile_executorch

    directory.mkdir()
    path = directory / "program.pte"
    path.write_bytes(pte)
    ops = {row["op"]: row["calls"] for row in profile_executorch(clips[0], 1, directory, path)["ops"]}
    method = Runtime.get().load_program(path).load_method("forward")
    with torch.no_grad():
        expected = model(torch.from_numpy(clips[1])).numpy()
    error = float(np.abs(method.execute([torch.from_numpy(clips[1])])[0].numpy() - expected).max())
    return ops, error / float(np.abs(expected).max())
