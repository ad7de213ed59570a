"""Where onnxruntime's memory goes on one VMF variant: RSS after session creation and peak RSS of inference, per setting.

    .venv/bin/python benchmarks/ort_session_memory.py                 # 5g, 64 frames (~3 min)
    .venv/bin/python benchmarks/ort_session_memory.py --artifact x.onnx

Every setting runs in a fresh process: the kernel's peak-RSS counter (``VmHWM``) is reset
just before the session is created, so "after load" is what the session holds before any
inference and "peak" is load + ``--runs`` inferences (the input clip is made before the
reset and not counted). Settings: the four graph optimisation levels (the runner uses
``ORT_ENABLE_ALL``), the runner's session with the CPU arena off or prepacking off, the
model passed as bytes, and the model with its constant-folded weights stored in the file
(onnxruntime's own ``ORT_ENABLE_BASIC`` output). Each setting is measured ``--rounds`` times,
interleaved. Prints a table and writes ``benchmarks/results/ort_session_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "ort_session_memory.json"

SETTINGS: dict[str, dict] = {
    "ORT_DISABLE_ALL": {"level": "ORT_DISABLE_ALL"},
    "ORT_ENABLE_BASIC": {"level": "ORT_ENABLE_BASIC"},
    "ORT_ENABLE_EXTENDED": {"level": "ORT_ENABLE_EXTENDED"},
    "ORT_ENABLE_ALL (the runner's)": {},
    "runner's, CPU arena off": {"arena": False},
    "runner's, prepacking off": {"entries": {"session.disable_prepacking": "1"}},
    "runner's, model as bytes": {"as_bytes": True},
    "runner's, folded weights stored in the file": {"folded_file": True},
}
"""Setting name → overrides of the runner's session (optimisation level, arena, config entries, how it is loaded)."""


def measure(path: str, setting: dict, runs: int, input_name: str, shape: list[int]) -> dict:
    """(child process) Load ``path`` with ``setting`` and run it; memory in MB, median latency in ms."""
    import numpy as np
    import onnxruntime as ort

    from vmf_deploy.bench.worker import current_rss, peak_rss, reset_peak_rss
    from vmf_deploy.runners.onnxruntime_cpu import OnnxRuntimeCPURunner

    clip = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    opts = OnnxRuntimeCPURunner(threads=2).session_options()
    if "level" in setting:
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, setting["level"])
    opts.enable_cpu_mem_arena = setting.get("arena", True)
    for key, value in setting.get("entries", {}).items():
        opts.add_session_config_entry(key, value)
    model = Path(path).read_bytes() if setting.get("as_bytes") else path
    if not reset_peak_rss():
        raise RuntimeError("cannot reset the peak-RSS counter (/proc/self/clear_refs): Linux only")
    base = current_rss()
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    after_load = current_rss() - base
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {input_name: clip})
        times.append(1000.0 * (time.perf_counter() - start))
    return {"after_load_mb": after_load / 1e6, "peak_mb": (peak_rss(hwm_reset=True) - base) / 1e6,
            "median_ms": statistics.median(times[1:])}


def model_input(path: Path) -> dict:
    """The graph input's name and static shape (read here, so the measuring processes load nothing else)."""
    import onnx

    graph_input = onnx.load(str(path), load_external_data=False).graph.input[0]
    return {"input_name": graph_input.name, "shape": [d.dim_value for d in graph_input.type.tensor_type.shape.dim]}


def folded_copy(path: Path, out_dir: Path) -> Path:
    """The model as onnxruntime's ``ORT_ENABLE_BASIC`` optimiser leaves it: constants folded and stored."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(out_dir / "folded.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return out_dir / "folded.onnx"


def main(argv: list[str] | None = None) -> int:
    """Export (or take) the artifact, measure every setting in its own process, print and store."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="5g")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--artifact", type=Path, help="an exported .onnx instead of exporting --variant")
    parser.add_argument("--runs", type=int, default=6, help="inferences per setting (the first is not timed)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        path, setting, runs, graph_input = args.child
        print(json.dumps(measure(path, json.loads(setting), int(runs), **json.loads(graph_input))))
        return 0
    from rich.console import Console
    from rich.table import Table

    from vmf_deploy.bench.artifacts import export_artifact
    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.manifest import write_json_atomic

    with tempfile.TemporaryDirectory(prefix="ort-memory-") as tmp:
        artifact = args.artifact or export_artifact("onnx", args.variant, args.frames, Path(tmp))
        folded = folded_copy(artifact, Path(tmp))
        graph_input = json.dumps(model_input(artifact))
        samples: dict[str, list[dict]] = {name: [] for name in SETTINGS}
        for _ in range(args.rounds):
            for name, setting in SETTINGS.items():
                path = folded if setting.get("folded_file") else artifact
                done = subprocess.run([sys.executable, __file__, "--child", str(path), json.dumps(setting),
                                       str(args.runs), graph_input], capture_output=True, text=True, cwd=REPO)
                if done.returncode:
                    print(done.stderr, file=sys.stderr)
                    return done.returncode
                samples[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
        sizes = {"artifact_mb": artifact.stat().st_size / 1e6, "folded_file_mb": folded.stat().st_size / 1e6}
    rows = [{"setting": name, **{key: statistics.median(s[key] for s in runs) for key in runs[0]},
             "samples": runs} for name, runs in samples.items()]
    table = Table(title=f"onnxruntime CPU session memory, {artifact.name} ({sizes['artifact_mb']:.1f} MB; folded "
                        f"copy {sizes['folded_file_mb']:.1f} MB), medians of {args.rounds} fresh processes")
    for col in ("setting", "RSS after load MB", "peak RSS MB", "median ms"):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for r in rows:
        table.add_row(r["setting"], f"{r['after_load_mb']:.0f}", f"{r['peak_mb']:.0f}", f"{r['median_ms']:.1f}")
    Console(width=150).print(table)
    doc = {"machine": describe(host_device_info()), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "variant": args.variant if args.artifact is None else None, "frames": args.frames, "runs": args.runs,
           "rounds": args.rounds, **sizes, "rows": rows}
    write_json_atomic(args.out, doc)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
