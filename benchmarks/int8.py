"""int8 against fp32 on onnxruntime CPU, ExecuTorch XNNPACK and OpenVINO CPU: latency side by side, agreement, accuracy.

    .venv/bin/python benchmarks/int8.py --checkpoint runs/reference-560m/last.safetensors
    .venv/bin/python benchmarks/int8.py --variant 560m --frames 64 --targets onnx --latency-only   # seeded init
    .venv/bin/python benchmarks/int8.py --checkpoint run/last.safetensors --targets openvino         # NNCF int8 IR
    .venv/bin/python benchmarks/int8.py --variant 560m --frames 64 --latency-only --reuse --out DIR      # time again

For each target, the model is exported twice through ``vmf-export``'s pipeline, fp32 and
``--precision int8 --calibration synthetic``, each passing its recipe's gate. Agreement,
accuracy and SQNR come from the int8 manifest's gate (PyTorch fp32 against the int8 artifact
on the recipe's 3 noise clips + 240 labelled held-out clips of the synthetic dataset's gate
split). Latency: both artifacts loaded in their runtime (2 threads), then timed taking turns
on the same clip in blocks (per round and artifact one untimed run, then ``--block`` timed
runs), medians: fp32 and int8 see the same machine drift. Not one run each per round: on two
cores, the runtime that just ran keeps its threads spinning into the other's run (onnxruntime's
fp32 560m at 64 × 172² read 56 ms that way and 27 ms in blocks, 2026-12-05). Prints a table and
writes ``benchmarks/results/int8.json``.

``--latency-only`` is for the seeded init (whose logits barely move between clips, so the int8
gate's limits mean nothing for it): the int8 export runs with a copy of the recipe whose int8
limits accept anything, and the row says so; agreement and SQNR are still printed.
An int8 export the gate refuses is a row too: the gate's first line, and nothing timed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "int8.json"
BACKENDS = {"onnx": "onnxruntime-cpu", "executorch": "executorch-xnnpack", "openvino": "openvino-cpu"}


def interleaved_ms(artifacts: dict[str, Path], backend: str | dict[str, str], clip, rounds: int, block: int,
                   threads: int) -> dict[str, float]:
    """Median ms of each artifact, timed in turns: per round, one untimed run then ``block`` timed runs each.

    ``backend`` runs every artifact, or maps each artifact's name to its own (runtimes compared in turns).
    Each runner is fed ``clip`` (NCTHW) in its artifact's own input layout, converted once, outside the timing.
    """
    from vmf_deploy.preprocess import to_layout
    from vmf_deploy.runners import get_runner

    runners, feeds = {}, {}
    for name, path in artifacts.items():
        runners[name] = get_runner(backend if isinstance(backend, str) else backend[name], threads=threads)
        runners[name].load(path)
        feeds[name] = to_layout(clip, runners[name].input_layout)
        for _ in range(3):
            runners[name].run(feeds[name])
    samples: dict[str, list[float]] = {name: [] for name in artifacts}
    for round_index in range(rounds):
        names = list(runners)
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            runners[name].run(feeds[name])
            for _ in range(block):
                start = time.perf_counter()
                runners[name].run(feeds[name])
                samples[name].append((time.perf_counter() - start) * 1e3)
    for runner in runners.values():
        runner.close()
    return {name: statistics.median(s) for name, s in samples.items()}


def main(argv: list[str] | None = None) -> int:
    """Export, measure, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint (agreement and accuracy mean something)")
    parser.add_argument("--variant", default="560m")
    parser.add_argument("--frames", type=int, help="clip length (default: the checkpoint's / variant's)")
    parser.add_argument("--targets", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--rounds", type=int, default=12, help="rounds of turns (default 12)")
    parser.add_argument("--block", type=int, default=5, help="timed runs per artifact per round (default 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "int8-bench")
    parser.add_argument("--latency-only", action="store_true", help="accept any int8 parity (seeded init)")
    parser.add_argument("--reuse", action="store_true",
                        help="time the artifacts an earlier run left in --out (with their manifests) instead of "
                             "exporting again; needs --frames")
    args = parser.parse_args(argv)
    if args.reuse and args.frames is None:
        parser.error("--reuse needs --frames (it names the artifacts to read)")
    sys.path.insert(0, str(REPO))

    import numpy as np

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.errors import ExportError
    from vmf_deploy.export.pipeline import export_model
    from vmf_deploy.export.recipes import accept_any_parity
    from vmf_deploy.export.targets import artifact_name, get_target
    from vmf_deploy.manifest import manifest_path

    rows = []
    for target in args.targets:
        results = {}
        for precision in ("fp32", "int8"):
            if args.reuse:
                artifact = args.out / artifact_name(args.variant, args.frames, get_target(target), precision)
                results[precision] = SimpleNamespace(
                    artifact=artifact, manifest=json.loads(manifest_path(artifact).read_text()))
                continue
            started = time.perf_counter()
            recipe = (accept_any_parity(get_target(target), "int8", args.out)
                      if args.latency_only and precision == "int8" else None)
            try:
                results[precision] = export_model(
                    args.variant, target, args.out, checkpoint=args.checkpoint, frames=args.frames, force=True,
                    precision=precision, calibration="synthetic" if precision == "int8" else None,
                    recipe_path=recipe)
            except ExportError as refused:
                if precision == "fp32":
                    raise
                print(f"{target} int8: {refused}", flush=True)  # the gate's measurements and its layer diff
                rows.append({"target": target, "backend": BACKENDS[target],
                             "gate": "refused: " + str(refused).split("\n")[0]})
                break
            print(f"{target} {precision}: exported in {time.perf_counter() - started:.0f} s", flush=True)
        if "int8" not in results:
            continue
        shape = results["fp32"].manifest["input"]["shape"]
        clip = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        ms = interleaved_ms({p: r.artifact for p, r in results.items()}, BACKENDS[target], clip, args.rounds,
                            args.block, args.threads)
        gate = results["int8"].manifest["parity"]["metrics"]
        quant = results["int8"].manifest["export"]["quantization"]
        rows.append({
            "target": target, "backend": BACKENDS[target], "input_shape": shape,
            "fp32_ms": ms["fp32"], "int8_ms": ms["int8"], "int8_over_fp32": ms["int8"] / ms["fp32"],
            "fp32_bytes": results["fp32"].manifest["artifact"]["size_bytes"],
            "int8_bytes": results["int8"].manifest["artifact"]["size_bytes"],
            "gate_clips": gate["clips"], "top1_agreement": gate["top1_agreement"],
            "centered_sqnr_db": gate["centered_sqnr_db"], "reference_accuracy": gate["reference_accuracy"],
            "int8_accuracy": gate["accuracy"], "compute_int8": quant.get("compute_nodes", quant.get("compute_ops")),
            "export_seconds": {p: r.manifest["export"]["export_seconds"] for p, r in results.items()},
            "gate": "not judged (--latency-only)" if args.latency_only else "passed",
        })

    machine = describe(host_device_info())
    source = str(args.checkpoint) if args.checkpoint else f"seeded init of {args.variant}"
    print(f"\nint8 vs fp32, {source}; {machine}; {args.threads} threads, {args.rounds} rounds of "
          f"{args.block} runs each in turns; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'target':<11}{'fp32 ms':>9}{'int8 ms':>9}{'ratio':>7}{'size':>7}{'agree':>8}{'SQNR':>7}"
          f"{'acc fp32→int8':>16}")
    for r in rows:
        if "fp32_ms" not in r:
            print(f"{r['target']:<11}{r['gate']}")
            continue
        acc = ("—" if r["reference_accuracy"] is None else
               f"{r['reference_accuracy']:.1%}→{r['int8_accuracy']:.1%}")
        print(f"{r['target']:<11}{r['fp32_ms']:9.1f}{r['int8_ms']:9.1f}{r['int8_over_fp32']:7.2f}"
              f"{r['fp32_bytes'] / r['int8_bytes']:6.1f}x{r['top1_agreement']:8.1%}"
              f"{r['centered_sqnr_db']:6.1f} {acc:>15}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"runs": []}
    document["runs"].append({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine,
                             "source": source, "threads": args.threads, "rounds": args.rounds,
                             "block": args.block,
                             "load_average": os.getloadavg(), "rows": rows})
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
