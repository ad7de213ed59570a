"""Fused vs unfused latency of every variant: onnxruntime CPU (and ExecuTorch-XNNPACK with --executorch).

For each variant the model is exported twice the way ``vmf-export`` does it, once with
``--no-fuse`` (only required rewrites) and once with every fusion; then a fresh worker
process (no torch OpenMP pool competing for the cores) loads both artifacts and runs
them interleaved — unfused, fused, unfused, fused, ... — with 2 threads, and reports the
medians, the speed-up, the fused-vs-unfused relative error on a parity clip, and the
machine's load average before and after (this machine is shared: read the speed-up,
which interleaving protects, before the absolute numbers).

    .venv/bin/python benchmarks/fusion_speed.py                   # 4 variants, 64 frames, ONNX
    .venv/bin/python benchmarks/fusion_speed.py --variants 560m --executorch --runs 30
    .venv/bin/python benchmarks/fusion_speed.py --attention-ops   # which ONNX attention op to fuse into

Writes a table to stdout and JSON to benchmarks/results/fusion_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "fusion_speed.json"
BACKENDS = {"onnx": "onnxruntime-cpu", "executorch": "executorch-xnnpack"}


def export_pair(variant: str, target: str, frames: int, out_dir: Path) -> dict:
    """Export ``variant`` unfused and fused for ``target``; return artifact paths, rewrites and timings."""
    import torch

    from vmf_deploy import build_seeded_model
    from vmf_deploy.export.recipes import load_recipe
    from vmf_deploy.export.targets import get_target
    from vmf_deploy.rewrites import run_rewrites

    model = build_seeded_model(variant, frames=frames).eval()
    shape = tuple(model.cfg.input_shape)
    recipe = load_recipe(get_target(target), None)
    entry: dict = {"variant": variant, "target": target, "input_shape": list(shape)}
    for fuse in (False, True):
        tag = "fused" if fuse else "unfused"
        path = out_dir / f"{variant}-{target}-{tag}.{'onnx' if target == 'onnx' else 'pte'}"
        start = time.perf_counter()
        if target == "onnx":
            from vmf_deploy.export import onnx_export

            rewritten, applied = run_rewrites("onnx", "module", model, fuse=fuse)
            proto = onnx_export.trace_to_onnx(rewritten, shape, recipe.options["opset"], recipe.path)
            proto = onnx_export.simplify_onnx(proto, recipe.path)
            proto, applied_onnx = run_rewrites("onnx", "onnx", proto, fuse=fuse)
            onnx_export.save_onnx(proto, path)
            applied, nodes = applied + applied_onnx, len(proto.graph.node)
        else:
            from vmf_deploy.export.executorch_export import lower_to_executorch

            program = lower_to_executorch(model, torch.zeros(shape), recipe, fuse=fuse)
            program.save(path)
            applied, nodes = program.rewrites, None
        entry[tag] = {"artifact": str(path), "rewrites": applied, "nodes": nodes,
                      "export_s": round(time.perf_counter() - start, 1)}
    return entry


def _without_spinning(make_options):  # noqa: ANN001, ANN202 - wraps the runner's session_options()
    """onnxruntime session options as the runner makes them, with intra-op thread spinning off."""

    def options():  # noqa: ANN202
        opts = make_options()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    return options


def time_pair(entry: dict, runs: int, threads: int, no_spin: bool = False) -> dict:
    """(worker) Interleaved timing of one unfused/fused pair; medians in ms and the relative error."""
    import numpy as np

    from vmf_deploy.parity import parity_clips
    from vmf_deploy.runners import get_runner

    runners = {}
    for tag in ("unfused", "fused"):
        runners[tag] = get_runner(BACKENDS[entry["target"]], threads=threads)
        if no_spin and entry["target"] == "onnx":
            runners[tag].session_options = _without_spinning(runners[tag].session_options)
        runners[tag].load(Path(entry[tag]["artifact"]))
    clip = parity_clips(tuple(entry["input_shape"]), [0])[0]
    outputs = {tag: r.run(clip) for tag, r in runners.items()}
    for r in runners.values():  # warm-up
        r.run(clip)
    times: dict[str, list[float]] = {"unfused": [], "fused": []}
    for _ in range(runs):
        for tag, r in runners.items():
            start = time.perf_counter()
            r.run(clip)
            times[tag].append(1000.0 * (time.perf_counter() - start))
    ref = outputs["unfused"]
    rel = float(np.abs(outputs["fused"] - ref).max() / np.abs(ref).max())
    med = {tag: statistics.median(t) for tag, t in times.items()}
    return {"unfused_ms": med["unfused"], "fused_ms": med["fused"], "speedup": med["unfused"] / med["fused"],
            "unfused_min_ms": min(times["unfused"]), "fused_min_ms": min(times["fused"]),
            "fused_vs_unfused_rel_error": rel, "runs": runs, "threads": threads, "onnx_spinning": not no_spin}


def worker(spec_path: str) -> None:
    """Entry of the timing process: read the pairs, time each, print JSON."""
    spec = json.loads(Path(spec_path).read_text())
    results = [dict(entry, **time_pair(entry, spec["runs"], spec["threads"], spec["no_spin"]))
               for entry in spec["pairs"]]
    print(json.dumps(results))


def bridge_graphs(kind: str, channels: int, positions: int, tokens: int = 6, heads: int = 2) -> dict:
    """One bridge at the given size as ONNX graphs: the exporter's chain and each fused candidate.

    ``m2f``: tokens ``q (1, M, C)`` read the feature map ``x (1, C, N)``; ``f2m``: ``x`` reads ``k, v (1, M, C)``.
    Returns ``{name: (model bytes, feeds)}``.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    ch, scale = channels // heads, (channels // heads) ** -0.5
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, channels, positions), dtype=np.float32)
    toks = rng.standard_normal((1, tokens, channels), dtype=np.float32)
    inits = [numpy_helper.from_array(np.array(v, dtype=np.int64), n) for n, v in (
        ("s_fmap", [1, heads, ch, positions]), ("s_tok", [1, tokens, heads, ch]), ("s_out", [1, channels, positions]),
        ("s_tok3", [1, tokens, channels]))] + [numpy_helper.from_array(np.array(scale, np.float32), "scale")]
    n = helper.make_node

    def model(nodes: list, inputs: list[str], opset: int) -> bytes:
        used = {i for node in nodes for i in node.input}
        graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info(i, TensorProto.FLOAT, None) for i in inputs],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  initializer=[t for t in inits if t.name in used])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                       helper.make_opsetid("com.microsoft", 1)]).SerializeToString()

    attn = {"q_num_heads": heads, "kv_num_heads": heads, "scale": scale}
    if kind == "m2f":
        feeds = {"x": x, "q": toks}
        chain = [n("Reshape", ["x", "s_fmap"], ["kv"]), n("Reshape", ["q", "s_tok"], ["q4a"]),
                 n("Transpose", ["q4a"], ["q4"], perm=[0, 2, 1, 3]), n("MatMul", ["q4", "kv"], ["s"]),
                 n("Mul", ["s", "scale"], ["ss"]), n("Softmax", ["ss"], ["p"], axis=-1),
                 n("Transpose", ["kv"], ["kvt"], perm=[0, 1, 3, 2]), n("MatMul", ["p", "kvt"], ["o"]),
                 n("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]), n("Reshape", ["ot", "s_tok3"], ["y"])]
        to_nc = [n("Transpose", ["x"], ["x3"], perm=[0, 2, 1])]
        return {"exported chain": (model(chain, ["x", "q"], 18), feeds),
                "Attention (opset 23)": (model(to_nc + [n("Attention", ["q", "x3", "x3"], ["y"], **attn)],
                                               ["x", "q"], 23), feeds),
                "MultiHeadAttention, 3D key": (model(to_nc + [n("MultiHeadAttention", ["q", "x3", "x3"], ["y"],
                                                                domain="com.microsoft", num_heads=heads, scale=scale)],
                                                     ["x", "q"], 18), feeds),
                "MultiHeadAttention, BNSH key": (model([n("Reshape", ["x", "s_fmap"], ["kv"]),
                                                        n("Transpose", ["kv"], ["k4"], perm=[0, 1, 3, 2]),
                                                        n("MultiHeadAttention", ["q", "k4", "k4"], ["y"],
                                                          domain="com.microsoft", num_heads=heads, scale=scale)],
                                                       ["x", "q"], 18), feeds)}
    feeds = {"x": x, "k": toks, "v": toks[:, ::-1].copy()}
    chain = [n("Reshape", ["x", "s_fmap"], ["x4"]), n("Transpose", ["x4"], ["q"], perm=[0, 1, 3, 2]),
             n("Reshape", ["k", "s_tok"], ["k4"]), n("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
             n("Reshape", ["v", "s_tok"], ["v4a"]), n("Transpose", ["v4a"], ["v4"], perm=[0, 2, 1, 3]),
             n("MatMul", ["q", "kt"], ["s"]), n("Mul", ["s", "scale"], ["ss"]), n("Softmax", ["ss"], ["p"], axis=-1),
             n("MatMul", ["p", "v4"], ["o"]), n("Transpose", ["o"], ["ot"], perm=[0, 1, 3, 2]),
             n("Reshape", ["ot", "s_out"], ["y"])]
    wrap = [n("Transpose", ["x"], ["x3"], perm=[0, 2, 1])], [n("Transpose", ["o3"], ["y"], perm=[0, 2, 1])]
    return {"exported chain": (model(chain, ["x", "k", "v"], 18), feeds),
            "Attention (opset 23)": (model([*wrap[0], n("Attention", ["x3", "k", "v"], ["o3"], **attn), *wrap[1]],
                                           ["x", "k", "v"], 23), feeds),
            "MultiHeadAttention": (model([*wrap[0], n("MultiHeadAttention", ["x3", "k", "v"], ["o3"],
                                                       domain="com.microsoft", num_heads=heads, scale=scale),
                                          *wrap[1]], ["x", "k", "v"], 18), feeds)}


def attention_ops(runs: int, threads: int) -> list[dict]:
    """Time each candidate attention op against the exported chain at VMF-560M's largest bridges."""
    import numpy as np
    import onnxruntime as ort

    rows = []
    # 560m at 64 frames: the first block's Mobile→Former reads 16 ch × 8·86·86 positions,
    # its Former→Mobile writes 16 ch × 8·43·43; stage 3 has 64 ch × 8·11·11.
    for kind, channels, positions in (("m2f", 16, 8 * 86 * 86), ("f2m", 16, 8 * 43 * 43), ("m2f", 64, 8 * 11 * 11),
                                      ("f2m", 64, 8 * 11 * 11)):
        graphs = bridge_graphs(kind, channels, positions)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
        sessions = {name: (ort.InferenceSession(g, opts, providers=["CPUExecutionProvider"]), f)
                    for name, (g, f) in graphs.items()}
        ref = sessions["exported chain"][0].run(None, sessions["exported chain"][1])[0]
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(runs):
            for name, (sess, feeds) in sessions.items():
                start = time.perf_counter()
                sess.run(None, feeds)
                times[name].append(1000.0 * (time.perf_counter() - start))
        for name, (sess, feeds) in sessions.items():
            err = float(np.abs(sess.run(None, feeds)[0] - ref).max() / np.abs(ref).max())
            rows.append({"bridge": "Mobile→Former" if kind == "m2f" else "Former→Mobile", "channels": channels,
                         "positions": positions, "graph": name, "median_ms": statistics.median(times[name]),
                         "rel_error": err})
    return rows


def machine() -> dict:
    """Where the numbers were taken."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version()}


def render(results: list[dict], meta: dict) -> None:
    """Print the results table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Fused vs unfused, median of {meta['runs']} interleaved runs, {meta['threads']} threads "
                        f"({meta['machine']['cpu']}; load {meta['load_before']} → {meta['load_after']})")
    for col in ("variant", "backend", "input", "unfused ms", "fused ms", "speed-up", "rel. error", "rewrites"):
        table.add_column(col, justify="left" if col in ("variant", "backend", "input", "rewrites") else "right")
    for r in results:
        rewrites = ", ".join(f"{a['name']}×{a['count']}" for a in r["fused"]["rewrites"] if a["count"])
        table.add_row(r["variant"], BACKENDS[r["target"]], "×".join(map(str, r["input_shape"][2:])),
                      f"{r['unfused_ms']:.1f}", f"{r['fused_ms']:.1f}", f"{r['speedup']:.2f}×",
                      f"{r['fused_vs_unfused_rel_error']:.1e}", rewrites)
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    """Export the pairs, time them in a fresh process, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["560m", "1g", "2g", "5g"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per artifact (interleaved)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-spin", action="store_true",
                        help="onnxruntime: session.intra_op.allow_spinning=0 (fairer on a busy, shared CPU)")
    parser.add_argument("--executorch", action="store_true", help="also lower and time ExecuTorch-XNNPACK .pte pairs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--attention-ops", action="store_true",
                        help="instead: time the candidate ONNX attention ops on single bridges (560m sizes)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    if args.attention_ops:
        return run_attention_ops(args)
    targets = ["onnx", "executorch"] if args.executorch else ["onnx"]
    with tempfile.TemporaryDirectory(prefix="fusion-speed-") as tmp:
        pairs = []
        for variant in args.variants:
            for target in targets:
                print(f"exporting {variant} → {target} (unfused, fused) ...", file=sys.stderr, flush=True)
                pairs.append(export_pair(variant, target, args.frames, Path(tmp)))
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"pairs": pairs, "runs": args.runs, "threads": args.threads,
                                    "no_spin": args.no_spin}))
        load_before = [round(x, 2) for x in os.getloadavg()]
        done = subprocess.run([sys.executable, __file__, "--worker", str(spec)], capture_output=True, text=True,
                              cwd=REPO)
        load_after = [round(x, 2) for x in os.getloadavg()]
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        results = json.loads(done.stdout.strip().splitlines()[-1])
    for r in results:  # the artifacts were temporary
        for tag in ("unfused", "fused"):
            r[tag].pop("artifact")
    meta = {"machine": machine(), "runs": args.runs, "threads": args.threads, "frames": args.frames,
            "onnx_spinning": not args.no_spin, "load_before": load_before, "load_after": load_after,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    render(results, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data.update({"meta": meta, "results": results})
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(data, indent=2))
    tmp_out.replace(args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def run_attention_ops(args: argparse.Namespace) -> int:
    """``--attention-ops``: print the op comparison and store it under ``attention_ops`` in the JSON."""
    from rich.console import Console
    from rich.table import Table

    load_before = [round(x, 2) for x in os.getloadavg()]
    rows = attention_ops(args.runs, args.threads)
    meta = {"machine": machine(), "runs": args.runs, "threads": args.threads, "load_before": load_before,
            "load_after": [round(x, 2) for x in os.getloadavg()], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    table = Table(title=f"One bridge, onnxruntime CPU, {args.threads} threads, median of {args.runs} interleaved runs")
    for col in ("bridge", "C × positions", "graph", "median ms", "rel. error"):
        table.add_column(col, justify="right" if col in ("median ms", "rel. error") else "left")
    for r in rows:
        table.add_row(r["bridge"], f"{r['channels']} × {r['positions']}", r["graph"], f"{r['median_ms']:.3f}",
                      f"{r['rel_error']:.1e}")
    Console().print(table)
    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    data["attention_ops"] = {"meta": meta, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(data, indent=2))
    tmp_out.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
