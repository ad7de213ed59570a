"""Where an export's time goes: graph size against the frame count, and a cProfile of each lowering.

1. **Nodes vs frames.** For each target, the graph the exporter captures at several clip
   lengths: the dynamo ONNX graph (nodes), the ExecuTorch 4D frames program (``torch.export``
   call nodes) and the CoreML input program (``torch.export`` + core-ATen decomposition). A
   lowering whose cost grows with T shows up here as a node count that grows with T.
2. **Profile** (``--profile``). One target's lowering under cProfile, its cumulative time
   split into the library phases named below (a phase's time includes what it calls, so
   nested phases overlap; cProfile roughly doubles Python-heavy times, so read the shares).

    .venv/bin/python benchmarks/export_profile.py                                  # nodes, 560m, T = 8..64
    .venv/bin/python benchmarks/export_profile.py --profile executorch --frames 16
    .venv/bin/python benchmarks/export_profile.py --time executorch --frames 64     # lowering wall time only

``--time`` is what a before/after comparison of two commits runs, alternating between checkouts.

Prints tables and writes benchmarks/results/export_profile.json.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import pstats
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import torch

from vmf_deploy.bench.machine import cpu_model
from vmf_deploy.export import coreml_export, executorch_export, onnx_export
from vmf_deploy.export.recipes import load_recipe
from vmf_deploy.export.targets import get_target
from vmf_deploy.models import build_seeded_model
from vmf_deploy.rewrites import run_rewrites

RESULTS = Path(__file__).resolve().parent / "results" / "export_profile.json"

PHASES: dict[str, list[tuple[str, str, str]]] = {
    "executorch": [
        ("torch.export of the 4D model", "torch/export/_trace.py", "_export"),
        ("to_edge: decompositions + edge passes", "executorch/exir/program/_program.py",
         "_gen_edge_manager_for_partitioners"),
        ("to_backend (partition + XNNPACK preprocess)", "executorch/exir/program/_program.py", "to_backend"),
        ("  XNNPACK graph passes (17 ExportPasses)", "executorch/backends/xnnpack/_passes/__init__.py", "transform"),
        ("to_executorch (memory planning, emit)", "executorch/exir/program/_program.py", "to_executorch"),
        ("all run_decompositions calls", "torch/export/exported_program.py", "run_decompositions"),
        ("all fake-tensor dispatch", "torch/_subclasses/fake_tensor.py", "dispatch"),
        ("fx provenance copies (NodeSource)", "torch/fx/traceback.py", "__init__"),
    ],
    "onnx": [
        ("torch.export", "torch/export/_trace.py", "_export"),
        ("run_decompositions", "torch/export/exported_program.py", "run_decompositions"),
        ("onnxscript optimizer (optimize=True)", "onnxscript/optimizer/_optimizer.py", "optimize_ir"),
        ("  its pattern rewriter", "onnxscript/rewriter/_rewrite_rule.py", "apply_to_model"),
        ("onnxsim", "onnxsim/onnx_simplifier.py", "simplify"),
    ],
    "coreml": [
        ("torch.export", "torch/export/_trace.py", "_export"),
        ("run_decompositions", "torch/export/exported_program.py", "run_decompositions"),
        ("coremltools.convert", "coremltools/converters/_converters_entry.py", "convert"),
        ("  MIL graph passes", "coremltools/converters/mil/mil/passes/pass_pipeline.py", "apply_pipeline"),
    ],
}
"""Per target: (phase, file suffix, function) whose cumulative time is the phase's."""


def _seeded(variant: str, frames: int) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The seeded init of ``variant`` at ``frames`` frames (eval mode) and its input shape."""
    model = build_seeded_model(variant, seed=0, frames=frames).eval()
    shape = tuple(model.cfg.input_shape)
    model.example_input_shape = shape  # the static shape the frames rewrites size themselves for
    return model, shape


def count_nodes(target: str, variant: str, frames: int) -> int:
    """Call nodes of the graph ``target``'s exporter captures for ``variant`` at ``frames`` frames."""
    model, shape = _seeded(variant, frames)
    recipe = load_recipe(get_target(target), None)
    rewritten, _ = run_rewrites(target, "module", copy.deepcopy(model), fuse=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if target == "onnx":
            return len(onnx_export.trace_to_onnx(rewritten, shape, recipe.options["opset"], recipe.path).graph.node)
        if target == "coreml":
            program = coreml_export.capture(rewritten, shape, recipe.path)
        else:
            program = torch.export.export(rewritten, (torch.zeros(shape),), strict=False)
    return sum(node.op == "call_function" for node in program.graph.nodes)


def lower(target: str, variant: str, frames: int) -> dict[str, float]:
    """Run ``target``'s lowering of ``variant`` (the export pipeline's steps, without the gate).

    Returns ExecuTorch's seconds per step (rewrite, export, lower, serialize); empty for the others.
    """
    model, shape = _seeded(variant, frames)
    recipe = load_recipe(get_target(target), None)
    if target == "executorch":
        program = executorch_export.lower_to_executorch(model, torch.zeros(shape), recipe)
        return {step: round(seconds, 1) for step, seconds in program.seconds.items()}
    rewritten, _ = run_rewrites(target, "module", copy.deepcopy(model), fuse=True)
    if target == "onnx":
        proto = onnx_export.trace_to_onnx(rewritten, shape, recipe.options["opset"], recipe.path)
        onnx_export.simplify_onnx(proto, recipe.path)
        return {}
    program = coreml_export.capture(rewritten, shape, recipe.path)
    coreml_export.convert(program, shape, recipe.options, "fp32", recipe.path)
    return {}


def phase_seconds(stats: pstats.Stats, target: str) -> list[dict]:
    """Cumulative profiled seconds of each of ``target``'s :data:`PHASES`."""
    rows = []
    for phase, file_suffix, function in PHASES[target]:
        seconds = max((ct for (file, _line, fn), (_cc, _nc, _tt, ct, _callers) in stats.stats.items()
                       if file.endswith(file_suffix) and fn == function), default=0.0)
        rows.append({"phase": phase, "seconds": round(seconds, 1)})
    return rows


def profile(target: str, variant: str, frames: int) -> dict:
    """Wall time of the lowering alone, then its profile split into phases."""
    start = time.perf_counter()
    lower(target, variant, frames)
    wall = time.perf_counter() - start
    profiler = cProfile.Profile()
    profiler.enable()
    lower(target, variant, frames)
    profiler.disable()
    stats = pstats.Stats(profiler)
    return {"target": target, "variant": variant, "frames": frames, "wall_seconds": round(wall, 1),
            "profiled_seconds": round(stats.total_tt, 1), "phases": phase_seconds(stats, target)}


def main() -> None:
    """Measure node counts against frames, or profile one lowering; print and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="560m")
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--targets", nargs="+", default=["onnx", "executorch", "coreml"])
    parser.add_argument("--profile", choices=sorted(PHASES), help="profile this target's lowering instead")
    parser.add_argument("--time", choices=sorted(PHASES), help="time this target's lowering once, unprofiled")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    record = json.loads(args.json.read_text()) if args.json.exists() else {"benchmark": "export_profile"}
    record["cpu"] = cpu_model()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if args.time:
        start = time.perf_counter()
        steps = lower(args.time, args.variant, args.frames[0])
        seconds = round(time.perf_counter() - start, 1)
        print(f"{args.time} lowering of {args.variant} at {args.frames[0]} frames: {seconds} s {steps or ''}")
        record.setdefault("lowering_seconds", []).append({"target": args.time, "variant": args.variant,
                                                          "frames": args.frames[0], "seconds": seconds,
                                                          "steps": steps, "created": now})
    elif args.profile:
        result = profile(args.profile, args.variant, args.frames[0])
        print(f"{args.profile} lowering of {args.variant} at {args.frames[0]} frames: {result['wall_seconds']} s "
              f"(unprofiled); profiled {result['profiled_seconds']} s, of which:")
        for row in result["phases"]:
            share = row["seconds"] / result["profiled_seconds"] if result["profiled_seconds"] else 0.0
            print(f"  {row['phase']:<48} {row['seconds']:7.1f} s  {share:5.0%}")
        record.setdefault("profiles", {})[args.profile] = {**result, "created": now}
    else:
        table = {t: {f: count_nodes(t, args.variant, f) for f in args.frames} for t in args.targets}
        print(f"graph nodes of {args.variant} by frames")
        print(f"{'target':<12}" + "".join(f"{f:>8}" for f in args.frames))
        for t, counts in table.items():
            print(f"{t:<12}" + "".join(f"{counts[f]:>8}" for f in args.frames))
        record["nodes_vs_frames"] = {"variant": args.variant, "created": now, "nodes": table}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
