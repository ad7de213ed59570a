"""ExecuTorch-XNNPACK lowering of every variant: lowering time, .pte size, delegation, parity, latency.

For each variant at 64 frames (the paper's protocol):

1. ``lower_to_executorch`` with the default recipe (``export/executorch.toml``): lowering time
   per step, ``.pte`` size, delegation summary (delegated / portable ops, compute ops delegated);
2. parity of the ``.pte`` in the ExecuTorch Python runtime vs PyTorch fp32 on 3 realistic clips
   (``vmf_deploy.parity``);
3. the plain ONNX of the *original* model (``torch.onnx.export``, dynamo, opset 18, no rewrites,
   no onnxsim) as the onnxruntime CPU reference;
4. latency: a fresh worker process (no torch thread pool competing for the cores) loads both
   artifacts and runs them interleaved — ExecuTorch, onnxruntime, ExecuTorch, ... — with 2
   threads each; medians are reported with the machine's load average before and after.

    .venv/bin/python benchmarks/executorch_lowering.py                     # 4 variants, 64 frames
    .venv/bin/python benchmarks/executorch_lowering.py --variants 560m --frames 16 --runs 5

Prints a table and writes benchmarks/results/executorch_lowering.json (merged per variant, so
variants can be measured in separate invocations).
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
RESULTS = REPO / "benchmarks" / "results" / "executorch_lowering.json"


def machine() -> dict:
    """Where the numbers were taken."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def lower_and_check(variant: str, frames: int, out_dir: Path) -> dict:
    """Lower ``variant``, save the .pte and plain ONNX, measure parity; return the record (without latency)."""
    import tomllib

    import numpy as np
    import torch

    from vmf_deploy import build_seeded_model
    from vmf_deploy.export.executorch_export import lower_to_executorch
    from vmf_deploy.export.onnx_export import save_onnx, trace_to_onnx
    from vmf_deploy.parity import compare_logits, parity_clips
    from vmf_deploy.runners import get_runner

    recipe_path = REPO / "export" / "executorch.toml"
    recipe = tomllib.loads(recipe_path.read_text())
    model = build_seeded_model(variant, frames=frames)
    shape = model.cfg.input_shape
    start = time.perf_counter()
    program = lower_to_executorch(model, torch.zeros(shape), recipe)
    lowering_s = time.perf_counter() - start
    pte = program.save(out_dir / f"{variant}-{frames}f.pte")

    start = time.perf_counter()
    save_onnx(trace_to_onnx(model, shape, 18, recipe_path), out_dir / f"{variant}-{frames}f.onnx")
    onnx_s = time.perf_counter() - start

    clips = parity_clips(shape, [0, 1, 2])
    with torch.no_grad():
        reference = [model(torch.from_numpy(c)).numpy() for c in clips]
    runner = get_runner("executorch-xnnpack", threads=2)
    runner.load(pte)
    report = compare_logits(reference, [runner.run(c) for c in clips])
    runner.close()
    profile = profile_pte(pte, list(shape), threads=2)
    summary = program.delegation
    return {
        "variant": variant, "frames": frames, "input_shape": list(shape),
        "lowering_seconds": round(lowering_s, 1), "lowering_steps": {k: round(v, 1) for k, v in program.seconds.items()},
        "pte_bytes": pte.stat().st_size, "onnx_export_seconds": round(onnx_s, 1),
        "rewrites": program.rewrites, "delegation": summary,
        "parity": {**report.to_dict(), "reference": "PyTorch fp32 eager", "seeds": [0, 1, 2],
                   "max_abs_logit": float(np.max([np.abs(r).max() for r in reference]))},
        "profile": profile,
        "artifacts": {"pte": str(pte), "onnx": str(out_dir / f"{variant}-{frames}f.onnx")},
    }


def profile_pte(pte: Path, shape: list[int], threads: int) -> dict:
    """Where one forward pass spends its time: ETDump per XNNPACK operator kind (ms, count), largest first.

    Runs in this process with the ExecuTorch threadpool at ``threads``; operator names are XNNPACK's
    (e.g. ``Convolution (NHWC, F32) IGEMM``, ``Transpose (ND, X32)``) without their ``#n`` suffix.
    """
    import re

    import torch
    from executorch.devtools import Inspector
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    portable_lib._unsafe_reset_threadpool(threads)
    program = Runtime.get().load_program(pte, enable_etdump=True)
    method = program.load_method("forward")
    clip = torch.randn(shape)
    for _ in range(3):  # the last run is the one kept in the ETDump buffer with the others
        method.execute([clip])
    with tempfile.TemporaryDirectory() as tmp:
        etdp = Path(tmp) / "run.etdp"
        program.write_etdump_result_to_file(str(etdp), str(Path(tmp) / "debug.bin"))  # debug file stays empty
        inspector = Inspector(etdump_path=str(etdp))
    kinds: dict[str, list[float]] = {}
    total = 0.0
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for event in block.events:
            if not event.perf_data:
                continue
            ms = statistics.median(event.perf_data.raw)
            if event.name == "DELEGATE_CALL":
                total = ms
            elif event.name not in ("Method::execute",):
                kind = re.sub(r" #\d+$", "", event.name)
                kinds.setdefault(kind, [0.0, 0])
                kinds[kind][0] += ms
                kinds[kind][1] += 1
    ranked = sorted(kinds.items(), key=lambda kv: -kv[1][0])
    return {"delegate_call_ms": total, "runs": 3, "threads": threads,
            "by_operator": {k: {"ms": round(v[0], 2), "count": v[1]} for k, v in ranked}}


def time_worker(spec_path: str) -> None:
    """Worker process: load the .pte and .onnx, run them interleaved, print JSON latencies (ms)."""
    import numpy as np

    from vmf_deploy.runners import get_runner

    spec = json.loads(Path(spec_path).read_text())
    clip = np.random.default_rng(0).standard_normal(spec["shape"]).astype(np.float32)
    runners = {"executorch-xnnpack": spec["pte"], "onnxruntime-cpu": spec["onnx"]}
    loaded = {}
    for name, artifact in runners.items():
        loaded[name] = get_runner(name, threads=spec["threads"])
        loaded[name].load(Path(artifact))
        for _ in range(spec["warmup"]):
            loaded[name].run(clip)
    times: dict[str, list[float]] = {name: [] for name in loaded}
    for _ in range(spec["runs"]):
        for name, runner in loaded.items():
            start = time.perf_counter()
            runner.run(clip)
            times[name].append(1000 * (time.perf_counter() - start))
    print(json.dumps(times))


def measure_latency(record: dict, runs: int, threads: int) -> dict:
    """Interleaved ExecuTorch vs onnxruntime latency of one variant in a fresh process."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"pte": record["artifacts"]["pte"], "onnx": record["artifacts"]["onnx"],
                   "shape": record["input_shape"], "runs": runs, "warmup": 2, "threads": threads}, f)
    load_before = os.getloadavg()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, __file__, "--worker", f.name], capture_output=True, text=True, env=env,
                         check=True, cwd=REPO)
    Path(f.name).unlink()
    times = json.loads(out.stdout.strip().splitlines()[-1])
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {"threads": threads, "runs": runs, "interleaved": True, "median_ms": medians, "all_ms": times,
            "executorch_over_onnxruntime": medians["executorch-xnnpack"] / medians["onnxruntime-cpu"],
            "load_average_before": load_before, "load_average_after": os.getloadavg()}


def print_table(records: list[dict]) -> None:
    """The summary table (rich)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ExecuTorch-XNNPACK lowering (fp32, 2 threads)")
    for col in ("variant", "input", "lower s", ".pte MB", "compute deleg.", "portable ops", "max rel err",
                "top-1", "ET ms", "ORT ms", "ET/ORT"):
        table.add_column(col, justify="right")
    for r in records:
        lat = r.get("latency", {})
        med = lat.get("median_ms", {})
        table.add_row(
            r["variant"], "×".join(map(str, r["input_shape"][2:])), f"{r['lowering_seconds']:.0f}",
            f"{r['pte_bytes'] / 1e6:.1f}", f"{r['delegation']['compute_ops_delegated_pct']:.0f}%",
            str(r["delegation"]["portable_ops"]), f"{r['parity']['max_rel_error']:.1e}",
            f"{r['parity']['top1_agreement']:.0%}",
            f"{med.get('executorch-xnnpack', float('nan')):.1f}", f"{med.get('onnxruntime-cpu', float('nan')):.1f}",
            f"{lat.get('executorch_over_onnxruntime', float('nan')):.2f}×")
    Console(width=160).print(table)


def main() -> None:
    """Run the benchmark for the chosen variants and merge the records into the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["560m", "1g", "2g", "5g"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        time_worker(args.worker)
        return
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"records": {}}
    data["machine"] = machine()
    with tempfile.TemporaryDirectory(prefix="vmf-et-bench-") as tmp:
        for variant in args.variants:
            record = lower_and_check(variant, args.frames, Path(tmp))
            record["latency"] = measure_latency(record, args.runs, args.threads)
            record.pop("artifacts")
            record["measured"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            data["records"][f"{variant}-{args.frames}f"] = record
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(data, indent=2) + "\n")
            print_table([record])
    print_table(list(data["records"].values()))


if __name__ == "__main__":
    main()
