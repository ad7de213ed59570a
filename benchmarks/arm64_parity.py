"""Every variant's artifacts on ARM64 kernels under qemu, against PyTorch and against the same artifact on x86.

    .venv/bin/python -m vmf_deploy.native_build --arch aarch64                  # once
    .venv/bin/python benchmarks/arm64_parity.py                                 # every variant, 64 frames
    .venv/bin/python benchmarks/arm64_parity.py --variant 560m --frames 16 --cpu cortex-a76

Exports each variant (seeded init) for each ARM64 backend's target, runs the parity clips in
PyTorch fp32, in the backend's x86 counterpart and in the ARM64 backend under
``qemu-aarch64-static`` for each ``QEMU_CPU`` (cortex-a76 and cortex-a53, phone cores; max, ARMv8.6+
with SVE), and prints max relative error, worst cosine and top-1 agreement of ARM64 vs PyTorch and
vs x86. A backend that cannot run here (not built, not in this vmf-deploy) gets a row with its
skip reason. Emulation is about 200x slower than native: the 5g at 64 frames takes minutes per
clip. No timing is taken: emulated latency means nothing. Writes ``benchmarks/results/arm64_parity.json``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "arm64_parity.json"
X86_PEERS = {"executorch-native-arm64": "executorch-xnnpack", "onnxruntime-arm64": "onnxruntime-cpu"}
"""ARM64 backend → the x86 backend that runs the same artifact here."""
CPUS = ("cortex-a76", "cortex-a53", "max")


def metrics(reference: list, candidate: list) -> dict:
    """The table's three numbers of ``candidate`` against ``reference``."""
    from vmf_deploy.parity import compare_logits

    report = compare_logits(reference, candidate)
    return {"max_rel_error": report.max_rel_error, "min_cosine": report.min_cosine,
            "top1_agreement": report.top1_agreement}


def run_emulated(backend: str, artifact: Path, clips: list, cpu: str) -> list:
    """Logits of ``artifact`` in the ARM64 ``backend`` with ``QEMU_CPU=cpu``."""
    from vmf_deploy.runners import runner_class

    os.environ["VMF_QEMU_CPU"] = os.environ["QEMU_CPU"] = cpu
    cls = runner_class(backend)
    kwargs = {"qemu_cpu": cpu} if "qemu_cpu" in inspect.signature(cls.__init__).parameters else {}
    runner = cls(**kwargs)
    runner.load(artifact)
    try:
        return [runner.run(c) for c in clips]
    finally:
        runner.close()


def skip_reason(backend: str) -> str | None:
    """Why ``backend`` cannot run here, else None."""
    from vmf_deploy.runners import BACKENDS, runner_class

    if backend not in BACKENDS:
        return f"skipped: {backend} is not a backend of this vmf-deploy"
    return runner_class(backend).availability()


def qemu_version() -> str:
    """The first line of ``qemu-aarch64-static --version``."""
    try:
        return subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    except OSError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    """Export, run on x86 and ARM64 for each CPU model, print, write."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", nargs="+", default=["560m", "1g", "2g", "5g"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--cpu", nargs="+", default=list(CPUS), help="QEMU_CPU models")
    parser.add_argument("--backend", nargs="+", default=list(X86_PEERS), help="ARM64 backends")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one parity clip per seed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch
    from rich.console import Console
    from rich.table import Table

    from vmf_deploy import build_seeded_model
    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.parity_gate import run_artifact
    from vmf_deploy.export.pipeline import export_model
    from vmf_deploy.manifest import write_json_atomic
    from vmf_deploy.parity import parity_clips
    from vmf_deploy.runners import runner_class

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variant:
            model = build_seeded_model(variant, frames=args.frames).eval()
            clips = parity_clips(tuple(model.cfg.input_shape), args.seeds)
            with torch.inference_mode():
                reference = [model(torch.from_numpy(c)).numpy() for c in clips]
            for backend in args.backend:
                reason = skip_reason(backend)
                if reason:
                    rows.append({"variant": variant, "backend": backend, "cpu": None, "status": reason})
                    continue
                target = runner_class(backend).export_target
                artifact = export_model(variant, target, Path(tmp) / variant / target, frames=args.frames).artifact
                x86 = run_artifact(X86_PEERS[backend], artifact, clips)
                for cpu in args.cpu:
                    arm = run_emulated(backend, artifact, clips, cpu)
                    rows.append({"variant": variant, "backend": backend, "cpu": cpu, "status": "ok",
                                 "frames": args.frames, "clips": len(clips), "artifact": artifact.name,
                                 "vs_pytorch": metrics(reference, arm), "vs_x86": metrics(x86, arm)})
                    print(f"{variant} {backend} {cpu}: done", flush=True)

    device = host_device_info()
    table = Table(title=f"ARM64 under qemu vs PyTorch fp32 and vs x86 ({args.frames} frames, {describe(device)})")
    for col in ("variant", "backend", "QEMU_CPU", "max rel vs torch", "cosine vs torch", "top-1 vs torch",
                "max rel vs x86", "cosine vs x86", "top-1 vs x86"):
        table.add_column(col)
    for r in rows:
        if r["status"] != "ok":
            table.add_row(r["variant"], r["backend"], "—", r["status"], *[""] * 5)
            continue
        p, x = r["vs_pytorch"], r["vs_x86"]
        table.add_row(r["variant"], r["backend"], r["cpu"], f"{p['max_rel_error']:.2e}", f"{p['min_cosine']:.8f}",
                      f"{p['top1_agreement']:.0%}", f"{x['max_rel_error']:.2e}", f"{x['min_cosine']:.8f}",
                      f"{x['top1_agreement']:.0%}")
    Console(width=200).print(table)
    write_json_atomic(args.out, {"created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 "device": device, "emulator": qemu_version(), "frames": args.frames,
                                 "seeds": args.seeds, "rows": rows})
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
