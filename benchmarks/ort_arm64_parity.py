"""The same ``.onnx`` on onnxruntime's aarch64 kernels under qemu, per emulated CPU, vs PyTorch and vs x86 onnxruntime.

    .venv/bin/python benchmarks/ort_arm64_parity.py                                  # 560m, 64 frames
    .venv/bin/python benchmarks/ort_arm64_parity.py --variants 560m 1g --cpus cortex-a76 max

For each variant: the seeded init (seed 0) is exported to ONNX at ``--frames`` (vmf-export's
pipeline, x86 parity gate included), run on the parity clips (``vmf_deploy.parity.parity_clips``
of ``--seeds``) by PyTorch fp32 eager, by ``onnxruntime-cpu`` on this x86 host and by
``onnxruntime-arm64`` under ``qemu-aarch64-static`` with each ``--cpus`` model. Prints, per CPU,
the max relative error, the lowest cosine and the top-1 agreement against PyTorch and against x86,
and writes ``benchmarks/results/ort_arm64_parity.json``. Nothing is timed: emulation is ~200×
slower than native, and its time is no phone's. Needs the userland
(``python -m vmf_deploy.arm64.userland``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "ort_arm64_parity.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=["560m"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--cpus", nargs="+", default=["cortex-a76", "cortex-a53", "max"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def logits_of(backend: str, artifact: Path, clips: list, threads: int, **kwargs: object) -> list:
    """Each clip's logits from ``backend`` (one load for all clips)."""
    from vmf_deploy.runners import get_runner

    runner = get_runner(backend, threads=threads, **kwargs)
    runner.load(artifact)
    try:
        return [runner.run(c) for c in clips]
    finally:
        runner.close()


def metrics(expected: list, actual: list) -> dict:
    """The three numbers per comparison: max relative error, lowest cosine, top-1 agreement."""
    from vmf_deploy.parity import compare_logits

    report = compare_logits(expected, actual)
    return {"max_rel_error": report.max_rel_error, "min_cosine": report.min_cosine,
            "top1_agreement": report.top1_agreement}


def main(argv: list[str] | None = None) -> int:
    """Measure every variant × CPU; print the table; write the JSON."""
    args = parse_args(argv)
    import torch

    from vmf_deploy import build_seeded_model
    from vmf_deploy.arm64.qemu import qemu_binary
    from vmf_deploy.arm64.userland import WHEELS, default_root, read_stamp, userland_problem
    from vmf_deploy.bench.artifacts import export_artifact
    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.manifest import write_json_atomic
    from vmf_deploy.parity import parity_clips

    problem = userland_problem()
    if problem:
        print(f"{problem}: run python -m vmf_deploy.arm64.userland first", file=sys.stderr)
        return 1
    qemu_version = subprocess.run([str(qemu_binary()), "--version"], capture_output=True, text=True,
                                  check=True).stdout.splitlines()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ort-arm64-parity-") as work:
        for variant in args.variants:
            model = build_seeded_model(variant, seed=0, frames=args.frames)
            clips = parity_clips(tuple(model.cfg.input_shape), args.seeds)
            with torch.inference_mode():
                reference = [model(torch.from_numpy(c)).numpy() for c in clips]
            artifact = export_artifact("onnx", variant, args.frames, Path(work) / variant)
            x86 = logits_of("onnxruntime-cpu", artifact, clips, args.threads)
            x86_row = {"variant": variant, "frames": args.frames, "runtime": "x86 onnxruntime-cpu",
                       "vs_pytorch": metrics(reference, x86)}
            rows.append(x86_row)
            print(f"{variant} {args.frames}f x86: {x86_row['vs_pytorch']}", flush=True)
            for cpu in args.cpus:
                t0 = time.perf_counter()
                arm = logits_of("onnxruntime-arm64", artifact, clips, args.threads, cpu=cpu)
                row = {"variant": variant, "frames": args.frames, "runtime": f"arm64 {cpu}",
                       "vs_pytorch": metrics(reference, arm), "vs_x86": metrics(x86, arm),
                       "wall_s_under_emulation": round(time.perf_counter() - t0, 1)}
                rows.append(row)
                print(f"{variant} {args.frames}f arm64 {cpu}: {row}", flush=True)
    print(f"\n{'variant':<8} {'runtime':<20} {'rel err vs torch':>16} {'cos vs torch':>13} {'top1':>5} "
          f"{'rel err vs x86':>15} {'cos vs x86':>11} {'top1':>5}")
    for r in rows:
        p, x = r["vs_pytorch"], r.get("vs_x86")
        vs_x86 = "" if x is None else (f"{x['max_rel_error']:>15.2e} {x['min_cosine']:>11.9f} "
                                       f"{x['top1_agreement']:>5.0%}")
        print(f"{r['variant']:<8} {r['runtime']:<20} {p['max_rel_error']:>16.2e} {p['min_cosine']:>13.9f} "
              f"{p['top1_agreement']:>5.0%} {vs_x86}")
    doc = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": describe(host_device_info()),
           "qemu": qemu_version, "onnxruntime_arm64": WHEELS["onnxruntime"][0],
           "userland_built": (read_stamp(default_root()) or {}).get("built"),
           "seeds": args.seeds, "threads": args.threads, "rows": rows}
    write_json_atomic(args.out, doc)
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
