"""One backend × variant measurement in a fresh process: ``python -m vmf_deploy.bench.worker SPEC OUT``.

Running each measurement in its own process makes the resident-memory high-water mark
honest (nothing from an earlier backend or from the PyTorch reference is resident) and
keeps a crashing native runtime from taking the harness down. The spec and the result are
JSON files; the input clips are ``.npy`` files written by the harness.

Memory: the backend's runtime is imported first (its resident cost, e.g. ExecuTorch's
Python runtime pulling in torch, is reported apart as ``runtime_import_rss_bytes``); then
on Linux the kernel's ``VmHWM`` (peak RSS) is reset through ``/proc/self/clear_refs`` just
before the artifact is loaded, so the peak covers load, warm-up and the timed runs only;
elsewhere ``ru_maxrss`` is used (the whole process life, stated in ``memory.method``). A backend that runs the model in a child process (the native
runner of ``executorch-native``) adds that child's peak RSS.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

HWM_METHOD = "VmHWM of a fresh worker process, reset before load (Linux clear_refs)"
MAXRSS_METHOD = "ru_maxrss of a fresh worker process (whole process life; no peak reset on this OS)"


def current_rss() -> int:
    """Resident set size of this process in bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux >= 4.0); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss(hwm_reset: bool) -> int:
    """Peak resident set size in bytes since the reset (or since process start)."""
    if hwm_reset:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def children_peak_rss() -> int:
    """Summed peak RSS of this process's live child processes (a native runner the backend spawned), Linux only."""
    import psutil

    total = 0
    for child in psutil.Process().children(recursive=True):
        try:
            status = Path(f"/proc/{child.pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return total


def make_runner(spec: dict):  # noqa: ANN201 - returns a vmf_deploy.runners.Runner
    """Instantiate and load the runner the spec names (a model spec builds the seeded PyTorch model)."""
    from vmf_deploy.runners import get_runner

    if spec.get("model") is not None:
        from vmf_deploy import build_seeded_model

        m = spec["model"]
        model = build_seeded_model(m["variant"], seed=m["seed"], **m["overrides"])
        return get_runner(spec["backend"], threads=spec["threads"], model=model)
    runner = get_runner(spec["backend"], threads=spec["threads"])
    runner.load(Path(spec["artifact"]))
    return runner


def measure(spec: dict) -> dict:
    """Load, warm up, time ``runs`` clips, collect logits of every parity clip and the peak RSS."""
    from vmf_deploy.preprocess import to_layout
    from vmf_deploy.runners import runner_class

    clips = [np.load(p) for p in spec["clips"]]
    before_import = current_rss()
    runner_class(spec["backend"]).availability()  # imports the runtime: a one-off cost, reported apart
    baseline = current_rss()
    runtime_rss = baseline - before_import
    hwm_reset = reset_peak_rss()
    if not hwm_reset:
        baseline = peak_rss(False)
    t0 = time.perf_counter()
    runner = make_runner(spec)
    load_ms = (time.perf_counter() - t0) * 1e3
    for index, clip in enumerate(clips):  # as the artifact takes them, one copy at a time: no transpose is timed
        clips[index] = to_layout(clip, runner.input_layout)
        del clip
    timing_clip = clips[0]
    emulation = getattr(runner, "emulation", None)
    samples = []
    if emulation is None:  # an emulated runner's timings mean nothing: only its logits are collected
        for _ in range(spec["warmup"]):
            runner.run(timing_clip)
        for _ in range(spec["runs"]):
            t = time.perf_counter()
            runner.run(timing_clip)
            samples.append((time.perf_counter() - t) * 1e3)
    logits = [np.asarray(runner.run(c), dtype=np.float32).tolist() for c in clips]
    peak = peak_rss(hwm_reset)
    children = children_peak_rss()
    method = HWM_METHOD if hwm_reset else MAXRSS_METHOD
    if children:
        method += " + VmHWM of the runner's child processes"
    out = {"load_ms": load_ms, "samples_ms": samples, "logits": logits,
           "memory": {"peak_rss_bytes": peak + children, "baseline_rss_bytes": baseline,
                      "inference_rss_bytes": max(peak - baseline, 0) + children,
                      "runtime_import_rss_bytes": max(runtime_rss, 0), "method": method},
           "profile": None}
    if emulation is not None:
        out["emulation"] = emulation
    if spec.get("profile") and emulation is None:
        from .profile import ProfileUnavailable, profile_runner

        artifact = Path(spec["artifact"]) if spec.get("artifact") else None
        try:
            out["profile"] = profile_runner(runner, timing_clip, spec["runs"], Path(spec["profile_dir"]), artifact)
        except ProfileUnavailable as e:
            out["profile_note"] = str(e)
    runner.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the spec, measure, write the result (``{"error": ...}`` on failure)."""
    spec_path, out_path = (argv or sys.argv[1:])[:2]
    spec = json.loads(Path(spec_path).read_text())
    from vmf_deploy.runners import BackendUnavailable

    try:
        result = measure(spec)
        code = 0
    except BackendUnavailable as e:
        result, code = {"skipped": str(e).removeprefix("skipped: ")}, 3
    except Exception as e:  # reported as this backend's "failed: ..." row; the harness goes on
        result, code = {"error": f"{type(e).__name__}: {e}".strip()}, 1
    Path(out_path).write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
