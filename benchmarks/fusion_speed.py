"""Fused vs unfused latency of every variant: onnxruntime CPU (and ExecuTorch-XNNPACK with --executorch).

For each variant the model is exported the way ``vmf-export`` does it, once with
``--no-fuse`` (only required rewrites), once with every fusion, for ONNX once more with the
other bridge form (recipe ``bridges = "attention"``) and, with ``--ablate``, once with every
fusion but one for each ONNX fusion; then a fresh worker process per
variant and runtime (no torch OpenMP pool and no other runtime's thread pool competing
for the cores) loads that variant's artifacts and runs them
block-interleaved (each round: one untimed run, then ``--block`` timed runs per
artifact, the order flipping every round) with 2 threads, and reports the medians, the
speed-up, the relative error against the unfused artifact on a parity clip, and the
machine's load average before and after (read the speed-up, which interleaving
protects, before the absolute numbers).

    .venv/bin/python benchmarks/fusion_speed.py                   # 4 variants, 64 frames, ONNX
    .venv/bin/python benchmarks/fusion_speed.py --variants 560m --ablate --runs 40
    .venv/bin/python benchmarks/fusion_speed.py --executorch     # + ExecuTorch-XNNPACK pairs
    .venv/bin/python benchmarks/fusion_speed.py --attention-ops   # which ONNX attention op to fuse into
    .venv/bin/python benchmarks/fusion_speed.py --depthwise-ops   # native depthwise Conv3d vs its 2D forms

Writes a table to stdout and JSON to benchmarks/results/fusion_speed.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "fusion_speed.json"
BACKENDS = {"onnx": "onnxruntime-cpu", "executorch": "executorch-xnnpack"}


def export_configs(variant: str, target: str, frames: int, out_dir: Path, ablate: bool = False) -> dict:
    """Export ``variant`` for ``target`` unfused, fused and (``ablate``, ONNX) fused without each fusion in turn.

    Returns ``{"variant", "target", "input_shape", "configs": {tag: {"artifact", "rewrites", "nodes", "export_s"}}}``
    with tags ``unfused``, ``fused``, (ONNX) ``fused, bridges = attention`` and ``fused without <rewrite>``.
    """
    import torch

    from vmf_deploy import build_seeded_model
    from vmf_deploy.export.recipes import ONNX_BRIDGE_FORMS, load_recipe
    from vmf_deploy.export.targets import get_target
    from vmf_deploy.rewrites import rewrite_classes, run_rewrites, unchosen_alternatives

    model = build_seeded_model(variant, frames=frames).eval()
    shape = tuple(model.cfg.input_shape)
    recipe = load_recipe(get_target(target), None)
    default = {"bridges": recipe.options["bridges"]} if target == "onnx" else {}
    # tag → (fuse, rewrites skipped, recipe choices)
    plans: dict[str, tuple[bool, tuple[str, ...], dict]] = {"unfused": (False, (), default),
                                                            "fused": (True, (), default)}
    if target == "onnx":
        other = next(v for v in ONNX_BRIDGE_FORMS if v != default["bridges"])
        plans[f"fused, bridges = {other}"] = (True, (), {"bridges": other})
    if ablate and target == "onnx":
        for cls in rewrite_classes():
            if target in cls.targets and not cls.required and cls.name not in unchosen_alternatives(default):
                plans[f"fused without {cls.name}"] = (True, (cls.name,), default)
    entry: dict = {"variant": variant, "target": target, "input_shape": list(shape), "configs": {}}
    for i, (tag, (fuse, skip, choices)) in enumerate(plans.items()):
        path = out_dir / f"{variant}-{target}-{i}.{'onnx' if target == 'onnx' else 'pte'}"
        start = time.perf_counter()
        if target == "onnx":
            from vmf_deploy.export import onnx_export

            rewritten, applied = run_rewrites("onnx", "module", model, fuse=fuse, skip=skip)
            proto = onnx_export.trace_to_onnx(rewritten, shape, recipe.options["opset"], recipe.path)
            proto = onnx_export.simplify_onnx(proto, recipe.path)
            proto, applied_onnx = run_rewrites("onnx", "onnx", proto, fuse=fuse, skip=skip, choices=choices)
            onnx_export.save_onnx(proto, path)
            applied, nodes = applied + applied_onnx, len(proto.graph.node)
        else:
            from vmf_deploy.export.executorch_export import lower_to_executorch

            program = lower_to_executorch(model, torch.zeros(shape), recipe, fuse=fuse)
            program.save(path)
            applied, nodes = program.rewrites, None
        entry["configs"][tag] = {"artifact": str(path), "rewrites": applied, "nodes": nodes,
                                 "export_s": round(time.perf_counter() - start, 1)}
    return entry


def _without_spinning(make_options):  # noqa: ANN001, ANN202 - wraps the runner's session_options()
    """onnxruntime session options as the runner makes them, with intra-op thread spinning off."""

    def options():  # noqa: ANN202
        opts = make_options()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    return options


def block_interleaved(calls: dict[str, Callable[[], object]], runs: int, block: int) -> dict[str, list[float]]:
    """Wall-clock ms of each call, block-interleaved: per round, one untimed call then ``block`` timed ones each.

    The order flips every round. The untimed call matters on onnxruntime: its pool threads keep
    spinning for a while after a run and take the cores from the *next* session, so strict
    run-by-run alternation charges each session with the other's spinning (measured here:
    medians 1.5-2x above the minimums).
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(max(1, -(-runs // block))):
        for name in names if round_ % 2 == 0 else names[::-1]:
            calls[name]()
            for _ in range(block):
                start = time.perf_counter()
                calls[name]()
                times[name].append(1000.0 * (time.perf_counter() - start))
    return times


def time_configs(entry: dict, runs: int, threads: int, block: int, no_spin: bool = False) -> dict:
    """(worker) :func:`block_interleaved` timing of one variant's configs; medians in ms and errors against unfused."""
    import numpy as np

    from vmf_deploy.parity import parity_clips
    from vmf_deploy.runners import get_runner

    runners = {}
    for tag, config in entry["configs"].items():
        runners[tag] = get_runner(BACKENDS[entry["target"]], threads=threads)
        if no_spin and entry["target"] == "onnx":
            runners[tag].session_options = _without_spinning(runners[tag].session_options)
        runners[tag].load(Path(config["artifact"]))
    clip = parity_clips(tuple(entry["input_shape"]), [0])[0]
    outputs = {tag: r.run(clip) for tag, r in runners.items()}
    times = block_interleaved({tag: functools.partial(r.run, clip) for tag, r in runners.items()}, runs, block)
    ref = outputs["unfused"]
    timing = {tag: {"median_ms": statistics.median(t), "min_ms": min(t), "runs": len(t),
                    "rel_error_vs_unfused": float(np.abs(outputs[tag] - ref).max() / np.abs(ref).max())}
              for tag, t in times.items()}
    med = {tag: t["median_ms"] for tag, t in timing.items()}
    return {"timing": timing, "unfused_ms": med["unfused"], "fused_ms": med["fused"],
            "speedup": med["unfused"] / med["fused"], "fused_vs_unfused_rel_error": timing["fused"]["rel_error_vs_unfused"],
            "threads": threads, "block": block, "onnx_spinning": not no_spin}


def worker(spec_path: str) -> None:
    """Entry of the timing process: read the variants' configs, time each variant, print JSON."""
    spec = json.loads(Path(spec_path).read_text())
    results = [dict(entry, **time_configs(entry, spec["runs"], spec["threads"], spec["block"], spec["no_spin"]))
               for entry in spec["entries"]]
    print(json.dumps(results))


def bridge_graphs(kind: str, channels: int, positions: int, tokens: int = 6, heads: int = 2) -> dict:
    """One bridge at the given size as ONNX graphs: the exporter's chain and each fused candidate.

    ``m2f``: tokens ``q (1, M, C)`` read the feature map ``x (1, C, N)``; ``f2m``: ``x`` reads ``k, v (1, M, C)``.
    The Mobile→Former exported chain is already the channels-first form (onnxruntime fuses its one
    map transpose into ``FusedMatMul``); Former→Mobile gets the ``onnx_bridge_channels_first`` form
    and the same with one ``Softmax(axis=-2)``. Returns ``{name: (model bytes, feeds)}``.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    ch, scale = channels // heads, (channels // heads) ** -0.5
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, channels, positions), dtype=np.float32)
    toks = rng.standard_normal((1, tokens, channels), dtype=np.float32)
    inits = [numpy_helper.from_array(np.array(v, dtype=np.int64), n) for n, v in (
        ("s_fmap", [1, heads, ch, positions]), ("s_tok", [1, tokens, heads, ch]), ("s_out", [1, channels, positions]),
        ("s_tok3", [1, tokens, channels]), ("token_axis", [2]))] + [
        numpy_helper.from_array(np.array(scale, np.float32), "scale")]
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
    scores = [n("Reshape", ["x", "s_fmap"], ["x4"]), n("Mul", ["k", "scale"], ["ks"]),  # (B, h, M, N) = (scale·K)·X
              n("Reshape", ["ks", "s_tok"], ["k4a"]), n("Transpose", ["k4a"], ["k4"], perm=[0, 2, 1, 3]),
              n("Reshape", ["v", "s_tok"], ["v4a"]), n("Transpose", ["v4a"], ["vt"], perm=[0, 2, 3, 1]),
              n("MatMul", ["k4", "x4"], ["s"])]
    over_tokens = [n("ReduceMax", ["s", "token_axis"], ["m"], keepdims=1), n("Sub", ["s", "m"], ["d"]),
                   n("Exp", ["d"], ["e"]), n("ReduceSum", ["e", "token_axis"], ["z"], keepdims=1),
                   n("MatMul", ["vt", "e"], ["o0"]), n("Div", ["o0", "z"], ["o"]), n("Reshape", ["o", "s_out"], ["y"])]
    one_softmax = [n("Softmax", ["s"], ["p"], axis=-2), n("MatMul", ["vt", "p"], ["o"]),
                   n("Reshape", ["o", "s_out"], ["y"])]
    return {"exported chain": (model(chain, ["x", "k", "v"], 18), feeds),
            "channels-first (onnx_bridge_channels_first)": (model(scores + over_tokens, ["x", "k", "v"], 18), feeds),
            "channels-first, Softmax(axis=-2)": (model(scores + one_softmax, ["x", "k", "v"], 18), feeds),
            "Attention (opset 23)": (model([*wrap[0], n("Attention", ["x3", "k", "v"], ["o3"], **attn), *wrap[1]],
                                           ["x", "k", "v"], 23), feeds),
            "MultiHeadAttention": (model([*wrap[0], n("MultiHeadAttention", ["x3", "k", "v"], ["o3"],
                                                       domain="com.microsoft", num_heads=heads, scale=scale),
                                          *wrap[1]], ["x", "k", "v"], 18), feeds)}


def attention_ops(runs: int, threads: int, block: int) -> list[dict]:
    """Time each candidate attention op against the exported chain at VMF-560M's and VMF-2G's bridge sizes."""
    import numpy as np
    import onnxruntime as ort

    rows = []
    # 560m at 64 frames: the first block's Mobile→Former reads 16 ch × 8·86·86 positions,
    # its Former→Mobile writes 16 ch × 8·43·43; stage 3 has 64 ch × 8·11·11.
    # 2g: the first block reads 20 ch × 16·112·112 and writes 20 ch × 16·56·56; stage 3 has 80 ch × 16·14·14.
    for kind, channels, positions in (("m2f", 16, 8 * 86 * 86), ("f2m", 16, 8 * 43 * 43), ("m2f", 64, 8 * 11 * 11),
                                      ("f2m", 64, 8 * 11 * 11), ("m2f", 20, 16 * 112 * 112),
                                      ("f2m", 20, 16 * 56 * 56), ("m2f", 80, 16 * 14 * 14), ("f2m", 80, 16 * 14 * 14)):
        graphs = bridge_graphs(kind, channels, positions)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
        sessions = {name: (ort.InferenceSession(g, opts, providers=["CPUExecutionProvider"]), f)
                    for name, (g, f) in graphs.items()}
        ref = sessions["exported chain"][0].run(None, sessions["exported chain"][1])[0]
        times = block_interleaved({name: functools.partial(sess.run, None, feeds)
                                   for name, (sess, feeds) in sessions.items()}, runs, block)
        for name, (sess, feeds) in sessions.items():
            err = float(np.abs(sess.run(None, feeds)[0] - ref).max() / np.abs(ref).max())
            rows.append({"bridge": "Mobile→Former" if kind == "m2f" else "Former→Mobile", "channels": channels,
                         "positions": positions, "graph": name, "median_ms": statistics.median(times[name]),
                         "rel_error": err})
    return rows


DEPTHWISE_SIZES = [  # (channels, frames, input size, spatial stride): every depthwise 3×3×3 of 560m (T' = 8) and 1g (16)
    (36, 8, 86, 2), (72, 8, 43, 2), (72, 8, 22, 1), (144, 8, 22, 2), (144, 8, 11, 1), (288, 8, 11, 2), (288, 8, 6, 1),
    (36, 16, 112, 2), (72, 16, 56, 2), (72, 16, 28, 1), (144, 16, 28, 2), (144, 16, 14, 1), (288, 16, 14, 2),
    (288, 16, 7, 1)]


def depthwise_graphs(channels: int, frames: int, size: int, stride: int) -> tuple[dict, "np.ndarray"]:
    """One depthwise 3×3×3 conv (pad 1, spatial ``stride``) as ONNX graphs: native 3D and the rewrite's 2D forms.

    ``banded 2D`` is what ``onnx_depthwise_conv2d`` emits; ``taps 2D`` is the exact-FLOP alternative it was
    measured against (three depthwise 2D convs on the same view, their outputs shifted one frame with Pad).
    Returns ``({name: model bytes}, input)``.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from vmf_deploy.rewrites.onnx_depthwise_conv2d import banded_weight

    c, t, hw = channels, frames, size
    rng = np.random.default_rng(0)
    w = rng.standard_normal((c, 1, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    x = rng.standard_normal((1, c, t, hw, hw)).astype(np.float32)
    out = (hw + 2 - 3) // stride + 1
    n, init = helper.make_node, numpy_helper.from_array

    def model(nodes: list, inits: list) -> bytes:
        graph = helper.make_graph(nodes, "dw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()

    views = [init(np.array([1, c * t, hw, hw], np.int64), "view"), init(np.array([1, c, t, out, out], np.int64), "back")]
    graphs = {"native Conv3d": model([n("Conv", ["x", "w", "b"], ["y"], group=c, pads=[1] * 6, strides=[1, stride, stride])],
                                     [init(w, "w"), init(b, "b")])}
    graphs["banded 2D"] = model([n("Reshape", ["x", "view"], ["x4"]),
                                 n("Conv", ["x4", "w", "b"], ["y4"], group=c, pads=[1] * 4, strides=[stride, stride]),
                                 n("Reshape", ["y4", "back"], ["y"])],
                                [init(banded_weight(w, t, t, 1, 1), "w"), init(np.repeat(b, t), "b"), *views])
    taps = [np.repeat(w[:, :, k], t, axis=0).reshape(c, t, 3, 3) for k in range(3)]
    taps[0][:, t - 1] = 0  # frame T-1 feeds no later frame of its own channel
    taps[2][:, 0] = 0
    nodes = [n("Reshape", ["x", "view"], ["x4"])]
    nodes += [n("Conv", ["x4", f"w{k}"] + (["b"] if k == 1 else []), [f"z{k}"], group=c * t, pads=[1] * 4,
                strides=[stride, stride]) for k in range(3)]
    nodes += [n("Pad", ["z0", "later"], ["z0s"]), n("Pad", ["z2", "earlier"], ["z2s"]), n("Add", ["z1", "z0s"], ["a"]),
              n("Add", ["a", "z2s"], ["y4"]), n("Reshape", ["y4", "back"], ["y"])]
    graphs["taps 2D"] = model(nodes, [init(taps[k].reshape(c * t, 1, 3, 3), f"w{k}") for k in range(3)]
                              + [init(np.repeat(b, t), "b"), init(np.array([0, 1, 0, 0, 0, -1, 0, 0], np.int64), "later"),
                                 init(np.array([0, -1, 0, 0, 0, 1, 0, 0], np.int64), "earlier"), *views])
    return graphs, x


def depthwise_ops(runs: int, threads: int, block: int) -> list[dict]:
    """Time the native depthwise Conv3d against the 2D forms at every VMF-560M / 1G depthwise size."""
    import numpy as np
    import onnxruntime as ort

    rows = []
    for size in DEPTHWISE_SIZES:
        graphs, x = depthwise_graphs(*size)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
        sessions = {name: ort.InferenceSession(g, opts, providers=["CPUExecutionProvider"]) for name, g in graphs.items()}
        ref = sessions["native Conv3d"].run(None, {"x": x})[0]
        times = block_interleaved({name: functools.partial(sess.run, None, {"x": x}) for name, sess in sessions.items()},
                                  runs, block)
        for name, sess in sessions.items():
            err = float(np.abs(sess.run(None, {"x": x})[0] - ref).max() / np.abs(ref).max())
            rows.append({"channels": size[0], "frames": size[1], "size": size[2], "stride": size[3], "graph": name,
                         "median_ms": statistics.median(times[name]), "rel_error": err})
    return rows


def machine() -> dict:
    """Where the numbers were taken."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version()}


def store(out: Path, entries: dict) -> None:
    """Merge ``entries`` into the JSON file ``out`` (other keys kept), through a temp file and a rename."""
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(out.read_text()) if out.exists() else {}
    data.update(entries)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(data, indent=2))
    tmp_out.replace(out)


def render(results: list[dict], meta: dict) -> None:
    """Print the fused-vs-unfused table, then (with ``--ablate``) each fusion's share."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)  # wide enough for the rewrites column when stdout is not a terminal
    table = Table(title=f"Fused vs unfused, medians of {meta['runs']} block-interleaved runs, {meta['threads']} "
                        f"threads ({meta['machine']['cpu']}; load {meta['load_before']} → {meta['load_after']})")
    for col in ("variant", "backend", "input", "unfused ms", "fused ms", "speed-up", "rel. error", "rewrites"):
        table.add_column(col, justify="left" if col in ("variant", "backend", "input", "rewrites") else "right")
    for r in results:
        fused = r["configs"]["fused"]
        rewrites = ", ".join(f"{a['name']}×{a['count']}" for a in fused["rewrites"] if a["count"])
        table.add_row(r["variant"], BACKENDS[r["target"]], "×".join(map(str, r["input_shape"][2:])),
                      f"{r['unfused_ms']:.1f}", f"{r['fused_ms']:.1f}", f"{r['speedup']:.2f}×",
                      f"{r['fused_vs_unfused_rel_error']:.1e}", rewrites)
    console.print(table)
    ablated = [r for r in results if len(r["timing"]) > 2]
    if not ablated:
        return
    table = Table(title="The other bridge form, and each fusion's share: all fusions but one (slower than 'fused' = "
                        "that fusion pays)")
    for col in ("variant", "backend", "config", "median ms", "÷ fused", "rel. error vs unfused"):
        table.add_column(col, justify="left" if col in ("variant", "backend", "config") else "right")
    for r in ablated:
        for tag, t in r["timing"].items():
            table.add_row(r["variant"], BACKENDS[r["target"]], tag, f"{t['median_ms']:.1f}",
                          f"{t['median_ms'] / r['fused_ms']:.2f}×", f"{t['rel_error_vs_unfused']:.1e}")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    """Export the configs, time them in a fresh process, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["560m", "1g", "2g", "5g"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per artifact")
    parser.add_argument("--block", type=int, default=4, help="timed runs per artifact in a row, after an untimed one")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-spin", action="store_true",
                        help="onnxruntime: session.intra_op.allow_spinning=0 (fairer on a busy, shared CPU)")
    parser.add_argument("--executorch", action="store_true", help="also lower and time ExecuTorch-XNNPACK .pte pairs")
    parser.add_argument("--ablate", action="store_true",
                        help="ONNX: also time the fused graph without each fusion in turn (one export per fusion)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--attention-ops", action="store_true",
                        help="instead: time the candidate ONNX bridge forms on single bridges (560m and 2g sizes)")
    parser.add_argument("--depthwise-ops", action="store_true",
                        help="instead: time one depthwise 3×3×3 conv as native Conv3d vs the 2D forms (560m/1g sizes)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    if args.attention_ops:
        return run_attention_ops(args)
    if args.depthwise_ops:
        return run_depthwise_ops(args)
    targets = ["onnx", "executorch"] if args.executorch else ["onnx"]
    with tempfile.TemporaryDirectory(prefix="fusion-speed-") as tmp:
        entries = []
        for variant in args.variants:
            for target in targets:
                print(f"exporting {variant} → {target} ...", file=sys.stderr, flush=True)
                entries.append(export_configs(variant, target, args.frames, Path(tmp), args.ablate))
        load_before = [round(x, 2) for x in os.getloadavg()]
        results = []
        for i, entry in enumerate(entries):  # one worker per variant × runtime: no other runtime's threads around
            spec = Path(tmp) / f"spec-{i}.json"
            spec.write_text(json.dumps({"entries": [entry], "runs": args.runs, "threads": args.threads,
                                        "block": args.block, "no_spin": args.no_spin}))
            done = subprocess.run([sys.executable, __file__, "--worker", str(spec)], capture_output=True, text=True,
                                  cwd=REPO)
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                return done.returncode
            results += json.loads(done.stdout.strip().splitlines()[-1])
        load_after = [round(x, 2) for x in os.getloadavg()]
    for r in results:  # the artifacts were temporary
        for config in r["configs"].values():
            config.pop("artifact")
    meta = {"machine": machine(), "runs": args.runs, "block": args.block, "threads": args.threads,
            "frames": args.frames, "onnx_spinning": not args.no_spin, "load_before": load_before,
            "load_after": load_after, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    render(results, meta)
    store(args.out, {"meta": meta, "results": results})
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def timed_with_meta(measure: Callable[[int, int, int], list[dict]], args: argparse.Namespace) -> tuple[list, dict]:
    """``measure(runs, threads, block)``'s rows and where/when/how they were taken (load before and after)."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows = measure(args.runs, args.threads, args.block)
    meta = {"machine": machine(), "runs": args.runs, "block": args.block, "threads": args.threads,
            "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    return rows, meta


def run_depthwise_ops(args: argparse.Namespace) -> int:
    """``--depthwise-ops``: print the depthwise-conv comparison and store it under ``depthwise_ops`` in the JSON."""
    from rich.console import Console
    from rich.table import Table

    rows, meta = timed_with_meta(depthwise_ops, args)
    table = Table(title=f"One depthwise 3×3×3 conv, onnxruntime CPU, {args.threads} threads, medians of {args.runs} "
                        "block-interleaved runs")
    for col in ("C × T × size², stride", "native Conv3d ms", "banded 2D ms", "taps 2D ms", "native ÷ banded"):
        table.add_column(col, justify="right")
    for i in range(0, len(rows), 3):
        ms = {r["graph"]: r["median_ms"] for r in rows[i:i + 3]}
        r = rows[i]
        table.add_row(f"{r['channels']} × {r['frames']} × {r['size']}², {r['stride']}", f"{ms['native Conv3d']:.2f}",
                      f"{ms['banded 2D']:.2f}", f"{ms['taps 2D']:.2f}", f"{ms['native Conv3d'] / ms['banded 2D']:.2f}×")
    Console(width=150).print(table)
    store(args.out, {"depthwise_ops": {"meta": meta, "rows": rows}})
    return 0


def run_attention_ops(args: argparse.Namespace) -> int:
    """``--attention-ops``: print the op comparison and store it under ``attention_ops`` in the JSON."""
    from rich.console import Console
    from rich.table import Table

    rows, meta = timed_with_meta(attention_ops, args)
    table = Table(title=f"One bridge, onnxruntime CPU, {args.threads} threads, median of {args.runs} block-interleaved "
                        "runs")
    for col in ("bridge", "C × positions", "graph", "median ms", "rel. error"):
        table.add_column(col, justify="right" if col in ("median ms", "rel. error") else "left")
    for r in rows:
        table.add_row(r["bridge"], f"{r['channels']} × {r['positions']}", r["graph"], f"{r['median_ms']:.3f}",
                      f"{r['rel_error']:.1e}")
    Console(width=150).print(table)
    store(args.out, {"attention_ops": {"meta": meta, "rows": rows}})
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
