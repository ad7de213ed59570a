"""Per-op time breakdown of one backend: onnxruntime's profiler, ExecuTorch's ETDump, OpenVINO's ``PERF_COUNT``,
PyTorch's profiler.

Each profiler runs in a separate pass after the timed runs (profiling perturbs timing) and
is aggregated by op type into ``{"source", "file", "ops": [{"op", "total_ms", "calls",
"share"}]}``, sorted by time, per clip.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


class ProfileUnavailable(RuntimeError):
    """This backend has no per-op profiler wired into vmf-bench; the message says why."""


def aggregate(times_us: dict[str, float], calls: dict[str, int], runs: int) -> list[dict]:
    """Per-clip totals per op type, sorted by time, with each op's share of the total."""
    total = sum(times_us.values()) or 1.0
    rows = [{"op": op, "total_ms": t / 1e3 / runs, "calls": calls[op] // runs, "share": t / total}
            for op, t in times_us.items()]
    return sorted(rows, key=lambda r: -r["total_ms"])


def onnxruntime_ops(trace: list[dict], runs: int) -> list[dict]:
    """Aggregate an onnxruntime profiler trace (Chrome-trace JSON events) by op type.

    Only kernel-time events of graph nodes count (``cat == "Node"``, name ending in
    ``_kernel_time``); session setup and the first ``run`` are excluded by the caller's
    ``runs`` (the trace covers exactly ``runs`` runs).
    """
    times: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for ev in trace:
        if ev.get("cat") == "Node" and str(ev.get("name", "")).endswith("_kernel_time"):
            op = ev.get("args", {}).get("op_name", "?")
            times[op] += float(ev.get("dur", 0))
            calls[op] += 1
    return aggregate(times, calls, runs)


def profile_onnxruntime(runner, clip: np.ndarray, runs: int, out_dir: Path, artifact: Path) -> dict:  # noqa: ANN001
    """Run ``runs`` clips in a profiling session with the runner's own options and providers."""
    import onnxruntime as ort

    opts = runner.session_options()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(out_dir / "onnxruntime_profile")
    session = ort.InferenceSession(str(artifact), opts, providers=runner.providers)
    name = session.get_inputs()[0].name
    session.run(None, {name: clip})  # warm-up, excluded below
    for _ in range(runs):
        session.run(None, {name: clip})
    trace_file = Path(session.end_profiling())
    trace = json.loads(trace_file.read_text())
    # keep only the timed runs: drop the events of the warm-up run
    run_starts = sorted(ev["ts"] for ev in trace if ev.get("name") == "model_run")
    cutoff = run_starts[1] if len(run_starts) > runs else 0
    trace = [ev for ev in trace if ev.get("ts", 0) >= cutoff]
    return {"source": f"onnxruntime {ort.__version__} profiler", "file": str(trace_file),
            "ops": onnxruntime_ops(trace, runs)}


def executorch_ops(rows: list[tuple[str, list[float]]], runs: int) -> list[dict]:
    """Aggregate ETDump events ``(event name, per-run ms)`` by op kind, dropping the warm-up run.

    XNNPACK names its delegate events ``"Convolution (NHWC, F32) IGEMM #3"``: the ``#N``
    instance suffix is dropped so instances of one kernel add up. The wrappers
    (``DELEGATE_CALL``, ``Method::execute``) are left out: they contain the ops.
    """
    times: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for name, per_run in rows:
        if name in ("DELEGATE_CALL", "Method::execute") or len(per_run) < 2:
            continue
        op = name.rsplit(" #", 1)[0]
        times[op] += 1e3 * float(sum(per_run[1:]))  # ms → µs, timed runs only
        calls[op] += len(per_run) - 1
    return aggregate(times, calls, runs)


def profile_executorch(clip: np.ndarray, runs: int, out_dir: Path, artifact: Path) -> dict:
    """Run the program with ETDump collection (1 warm-up + ``runs``) and aggregate it with the Inspector."""
    import torch
    from executorch.devtools import Inspector
    from executorch.runtime import Runtime

    # no debug buffer: only timings are needed, and a 64-frame clip overflows any small one (ETDump aborts)
    program = Runtime.get().load_program(artifact, enable_etdump=True, debug_buffer_size=0)
    method = program.load_method("forward")
    x = torch.from_numpy(clip)
    for _ in range(runs + 1):
        method.execute([x])
    etdump = out_dir / "executorch.etdp"
    program.write_etdump_result_to_file(str(etdump), str(out_dir / "executorch_debug.bin"))
    frame = Inspector(etdump_path=str(etdump)).to_dataframe()
    frame = frame[frame["event_block_name"] == "Execute"]
    rows = [(str(name), list(raw)) for name, raw in zip(frame["event_name"], frame["raw"])]
    from importlib.metadata import version

    return {"source": f"executorch {version('executorch')} ETDump (Inspector)", "file": str(etdump),
            "ops": executorch_ops(rows, runs)}


def profile_torch(model, clip: np.ndarray, runs: int, out_dir: Path) -> dict:  # noqa: ANN001
    """PyTorch profiler over ``runs`` eager forward passes, aggregated by aten op (self time)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    x = torch.from_numpy(clip)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if next(model.parameters()).is_cuda else [])
    if next(model.parameters()).is_cuda:
        x = x.cuda()
    with torch.inference_mode():
        model(x)
        with profile(activities=activities) as prof:
            for _ in range(runs):
                model(x)
    trace_file = out_dir / "torch_profile.json"
    prof.export_chrome_trace(str(trace_file))
    times = {e.key: float(e.self_cpu_time_total) for e in prof.key_averages() if e.self_cpu_time_total > 0}
    calls = {e.key: int(e.count) for e in prof.key_averages()}
    return {"source": f"torch {torch.__version__} profiler (self CPU time)", "file": str(trace_file),
            "ops": aggregate(times, calls, runs)}


def profile_openvino(runner, clip: np.ndarray, runs: int, out_dir: Path, artifact: Path) -> dict:  # noqa: ANN001
    """Run ``runs`` clips in an IR compiled as the runner compiles it plus ``PERF_COUNT``; per node type, executed nodes.

    The per-node rows of every timed run (the warm-up run excluded) are written to
    ``openvino_perf_counts.json`` in ``out_dir``.
    """
    import openvino as ov

    compiled = ov.Core().compile_model(str(artifact), runner.device, {**runner.config, "PERF_COUNT": "YES"})
    request = compiled.create_infer_request()
    request.infer({0: clip})  # warm-up, excluded
    times: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    rows = []
    for _ in range(runs):
        request.infer({0: clip})
        for info in request.profiling_info:
            if info.status != info.Status.EXECUTED:
                continue
            us = info.real_time.total_seconds() * 1e6
            times[info.node_type] += us
            calls[info.node_type] += 1
            rows.append({"node": info.node_name, "type": info.node_type, "exec_type": info.exec_type, "us": us})
    trace_file = out_dir / "openvino_perf_counts.json"
    trace_file.write_text(json.dumps(rows))
    version = importlib.metadata.version("openvino")
    return {"source": f"OpenVINO {version} PERF_COUNT ({runner.device})", "file": str(trace_file),
            "ops": aggregate(times, calls, runs)}


def profile_runner(runner, clip: np.ndarray, runs: int, out_dir: Path,  # noqa: ANN001
                   artifact: Path | None = None) -> dict:
    """Per-op breakdown for the runner's backend (raises :class:`ProfileUnavailable` if none is wired)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(runner, "session_options") and hasattr(runner, "providers") and artifact is not None:
        return profile_onnxruntime(runner, clip, runs, out_dir, artifact)
    if runner.name == "executorch-xnnpack" and artifact is not None:  # ETDump of the Python runtime's run
        return profile_executorch(clip, runs, out_dir, artifact)
    if hasattr(runner, "compiled") and hasattr(runner, "config") and artifact is not None:  # an OpenVINO IR
        return profile_openvino(runner, clip, runs, out_dir, artifact)
    model = getattr(runner, "model", None)
    if model is not None and hasattr(model, "named_modules"):
        return profile_torch(model, clip, runs, out_dir)
    raise ProfileUnavailable(f"no per-op profiler for backend {runner.name} in vmf-bench")
