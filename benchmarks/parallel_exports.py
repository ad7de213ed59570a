"""Two exports side by side in worker processes (``vmf-export --jobs 2``), with OpenMP's default waits and passive.

    python benchmarks/parallel_exports.py --checkpoint runs/reference-560m/last.safetensors \
        --out benchmarks/results/parallel_exports.json

Each round runs the same pair (one plain int8 ExecuTorch export and one with 8 fine-tuning steps, by default)
twice, interleaved: once in workers started as the environment leaves them, once in workers started inside
``passive_openmp_waits()``. It prints the wall time and each export's steps, and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

from vmf_deploy.bench.machine import host_device_info
from vmf_deploy.export.parallel import passive_openmp_waits
from vmf_deploy.export.pipeline import export_model

PAIR = {"plain": (), "fine-tuned": ("quantization.qat_steps=8", "quantization.qat_clips=8")}


def run_pair(policy: str, args: argparse.Namespace, folder: Path) -> dict:
    """The pair exported side by side, two workers; the wall time and each export's steps."""
    context = passive_openmp_waits() if policy == "passive" else nullcontext()
    start = time.perf_counter()
    with context, ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"),
                                      max_tasks_per_child=1) as pool:
        futures = {name: pool.submit(export_model, args.variant, args.target, folder / policy / name,
                                     checkpoint=args.checkpoint, precision=args.precision, force=True,
                                     calibration="synthetic" if args.precision == "int8" else None,
                                     recipe_overrides=overrides)
                   for name, overrides in PAIR.items()}
        results = {name: future.result() for name, future in futures.items()}
    return {"wall_s": time.perf_counter() - start,
            "exports": {name: {"seconds": r.manifest["export"]["export_seconds"], "steps": dict(r.steps)}
                        for name, r in results.items()}}


def main() -> None:
    """Run the rounds, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a trained checkpoint (int8 is gated on it)")
    parser.add_argument("--variant", default="560m")
    parser.add_argument("--target", default="executorch")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows: dict[str, list[dict]] = {"default": [], "passive": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for policy, runs in rows.items():
                runs.append(run_pair(policy, args, Path(tmp)))
    device = host_device_info()
    print(f"{args.variant} {args.precision} {args.target}, two exports side by side; {device['cpu_model']}, "
          f"{device['logical_cores']} cores; medians of {args.rounds} round(s)")
    columns = "".join(f"{f'{name} s':>14}{'quantize':>10}{'lower':>8}" for name in PAIR)
    print(f"{'OpenMP waits':<14}{'wall s':>8}{columns}")
    for policy, runs in rows.items():
        line = f"{policy:<14}{statistics.median(r['wall_s'] for r in runs):8.1f}"
        for name in PAIR:
            exports = [r["exports"][name] for r in runs]
            line += f"{statistics.median(e['seconds'] for e in exports):14.1f}"
            line += f"{statistics.median(e['steps'].get('quantize', 0.0) for e in exports):10.1f}"
            line += f"{statistics.median(e['steps'].get('lower', 0.0) for e in exports):8.1f}"
        print(line)
    doc = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
           "settings": {k: str(v) for k, v in vars(args).items()}, "pair": {k: list(v) for k, v in PAIR.items()},
           "rounds": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
