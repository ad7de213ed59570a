"""Fusion report: what each rewrite of a target removes, in graph nodes and (ONNX) in time.

``python -m vmf_deploy.rewrites.report --variant 560m --target onnx`` builds the model,
applies the target's fusions one at a time in registry order (the target's required
rewrites always run) and prints, after each step, the graph's op counts; for ONNX it
also profiles every step in onnxruntime (``enable_profiling``, CPU EP, 2 threads) and
prints the per-op-type latency split, so a user sees where time goes and what each
fusion buys. ``--json FILE`` writes the same numbers.

Graphs per target: ONNX — the exported graph (dynamo export + onnxsim, as ``vmf-export``);
ExecuTorch — the ATen graph handed to the XNNPACK partitioner (``torch.export`` of the
rewritten model); CoreML — the ML Program's MIL ops (``coremltools.convert``, iOS18).
Only ONNX gets latencies here: ExecuTorch's per-op split needs an ETDump-enabled runtime
build (``vmf-bench`` profiles .pte files), and Core ML runs only on macOS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import rewrite_classes, unchosen_alternatives

TARGETS = ("onnx", "executorch", "coreml")


def fusion_steps(target: str) -> tuple[list[type], list[type]]:
    """(required, optional) rewrite classes of ``target`` in registry order (the default of each alternative)."""
    classes = [c for c in rewrite_classes() if target in c.targets and c.name not in unchosen_alternatives()]
    return [c for c in classes if c.required], [c for c in classes if not c.required]


def _apply(classes: list[type], stage: str, obj: Any) -> Any:
    for cls in classes:
        if cls.stage == stage:
            obj = cls().apply(obj).obj
    return obj


def onnx_graph(model: nn.Module, shape: tuple[int, ...], onnx_rewrites: list[type]) -> Any:
    """The ``vmf-export`` ONNX graph of ``model`` (opset 18, onnxsim) after ``onnx_rewrites``."""
    from vmf_deploy.export import onnx_export

    recipe = Path("export/onnx.toml")
    proto = onnx_export.simplify_onnx(onnx_export.trace_to_onnx(model, shape, 18, recipe), recipe)
    return _apply(onnx_rewrites, "onnx", proto)


def onnx_op_counts(proto: Any) -> dict[str, int]:
    """Node count per op type."""
    return dict(Counter(n.op_type for n in proto.graph.node).most_common())


def onnx_profile(proto: Any, shape: tuple[int, ...], runs: int, threads: int = 2) -> dict:
    """Median latency and mean per-op-type kernel time (ms per run) of ``proto`` in onnxruntime CPU."""
    import numpy as np
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
        session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        for _ in range(2):
            session.run(None, {"video": x})
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run(None, {"video": x})
            times.append(time.perf_counter() - start)
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            session.run(None, {"video": x})
        events = json.loads(Path(session.end_profiling()).read_text())
    per_op: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"] / 1000.0 / runs
    return {"median_ms": 1000.0 * statistics.median(times),
            "op_ms": dict(sorted(per_op.items(), key=lambda kv: -kv[1]))}


def aten_op_counts(model: nn.Module, shape: tuple[int, ...]) -> dict[str, int]:
    """ATen op counts of ``torch.export(model)`` after the default decompositions (what ``to_edge`` sees)."""
    with torch.no_grad():
        program = torch.export.export(model, (torch.zeros(shape),), strict=False).run_decompositions()
    ops = Counter(str(n.target).split(".")[1] if str(n.target).startswith("aten.") else str(n.target)
                  for n in program.graph.nodes if n.op == "call_function")
    return dict(ops.most_common())


def mil_op_counts(model: nn.Module, shape: tuple[int, ...]) -> dict[str, int]:
    """Core ML MIL op counts of ``model`` converted as ``vmf-export --target coreml`` does, at iOS18."""
    import coremltools as ct

    program = torch.export.export(model, (torch.zeros(shape),)).run_decompositions({})
    mlmodel = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                         compute_precision=ct.precision.FLOAT32, skip_model_load=True)
    ops = Counter(op.op_type for op in mlmodel._mil_program.functions["main"].operations if op.op_type != "const")
    return dict(ops.most_common())


def build_report(variant: str, target: str, frames: int | None = None, runs: int = 10) -> dict:
    """Op counts (and for ONNX latencies) after each fusion step of ``target`` on ``variant``."""
    from vmf_deploy import build_seeded_model

    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    overrides = {"frames": frames} if frames else {}
    model = build_seeded_model(variant, **overrides).eval()
    shape = tuple(model.cfg.input_shape)
    model.example_input_shape = shape
    required, optional = fusion_steps(target)
    steps = []
    for i in range(len(optional) + 1):
        applied = optional[:i]
        classes = [c for c in rewrite_classes() if c in required or c in applied]
        module = _apply(classes, "module", model)
        step: dict[str, Any] = {"step": "unfused" if i == 0 else f"+ {applied[-1].name}"}
        if target == "onnx":
            proto = onnx_graph(module, shape, [c for c in classes if c.stage == "onnx"])
            step["ops"] = onnx_op_counts(proto)
            step.update(onnx_profile(proto, shape, runs))
        elif target == "executorch":
            step["ops"] = aten_op_counts(module, shape)
        else:
            step["ops"] = mil_op_counts(module, shape)
        step["nodes"] = sum(step["ops"].values())
        steps.append(step)
    return {"variant": variant, "target": target, "input_shape": list(shape), "threads": 2,
            "required": [c.name for c in required], "steps": steps}


def render(report: dict) -> None:
    """Print the report as two rich tables: op counts per step, and (ONNX) ms per op type per step."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    steps = report["steps"]
    title = f"{report['variant']} → {report['target']}, input {tuple(report['input_shape'])}"
    counts = Table(title=f"Graph ops after each fusion — {title}")
    counts.add_column("op")
    for s in steps:
        counts.add_column(s["step"], justify="right")
    ops = sorted({op for s in steps for op in s["ops"]}, key=lambda op: -steps[0]["ops"].get(op, 0))
    for op in ops:
        counts.add_row(op, *[str(s["ops"].get(op, "")) for s in steps])
    counts.add_row("[b]nodes", *[f"[b]{s['nodes']}" for s in steps])
    console.print(counts)
    if "median_ms" not in steps[0]:
        console.print("latency split: onnx only (ExecuTorch: profile the .pte with vmf-bench; CoreML needs macOS)")
        return
    lat = Table(title=f"onnxruntime CPU, {report['threads']} threads: kernel ms per op type (profiler) — {title}")
    lat.add_column("op")
    for s in steps:
        lat.add_column(s["step"], justify="right")
    names = sorted({op for s in steps for op in s["op_ms"]}, key=lambda op: -steps[0]["op_ms"].get(op, 0.0))
    for op in names:
        lat.add_row(op, *[f"{s['op_ms'][op]:.2f}" if op in s["op_ms"] else "" for s in steps])
    lat.add_row("[b]sum of kernels", *[f"[b]{sum(s['op_ms'].values()):.2f}" for s in steps])
    lat.add_row("[b]median latency (unprofiled)", *[f"[b]{s['median_ms']:.2f}" for s in steps])
    console.print(lat)


def main(argv: list[str] | None = None) -> int:
    """CLI entry: ``python -m vmf_deploy.rewrites.report --variant 560m --target onnx``."""
    parser = argparse.ArgumentParser(prog="python -m vmf_deploy.rewrites.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="560m", help="model variant (560m, 1g, 2g, 5g, ...)")
    parser.add_argument("--target", default="onnx", choices=TARGETS)
    parser.add_argument("--frames", type=int, default=None, help="clip length (default: the variant's, 64)")
    parser.add_argument("--runs", type=int, default=10, help="timed / profiled runs per step (onnx)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    from vmf_deploy.cli.common import output_file_problem

    problem = output_file_problem("--json", args.json, "report.json") if args.json else None
    if problem:
        parser.error(problem)
    torch.set_num_threads(2)
    from vmf_deploy.models.config import ConfigError

    try:
        report = build_report(args.variant, args.target, args.frames, args.runs)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    render(report)
    if args.json:
        from vmf_deploy.manifest import write_json_atomic

        write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
