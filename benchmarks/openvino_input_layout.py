"""The OpenVINO recipe's ``input_layout``, side by side: the IR exported planar (``NCTHW``) against channels-last.

    .venv/bin/python benchmarks/openvino_input_layout.py                          # 560m 1g 2g 5g x3d-xs x3d-s
    .venv/bin/python benchmarks/openvino_input_layout.py --variants 560m --rounds 5

The CPU plugin runs the stem's 3-channel Conv3d channels-last. An IR whose input is planar
``(1, 3, T, H, W)`` therefore starts by reordering the whole clip (560m avoids most of that with
the ``input_conv_channel_split`` rewrite); an IR exported with ``[openvino] input_layout = "NTHWC"``
reads a ``(1, T, H, W, 3)`` clip as it comes. Per model the seeded model is exported with
``vmf-export --target openvino`` twice, with a copy of ``export/openvino.toml`` naming each
layout, and each IR is loaded by the ``openvino-cpu`` runner. They take turns in blocks, order
rotating, in one process:

* the ``NCTHW`` IR fed planar clips;
* the ``NTHWC`` IR fed channels-last clips (what ``vmf-predict`` gives it: the manifest's
  preprocessing writes that layout);
* the ``NTHWC`` IR fed planar clips, which the runner transposes (what a caller holding planar
  clips pays).

Each IR also runs once under ``PERF_COUNT`` for the time of the node that reads the input. Prints a
table, writes ``benchmarks/results/openvino_input_layout.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
LAYOUT_LINE = 'input_layout = "{}"'


def recipe_with_layout(layout: str, folder: Path) -> Path:
    """A copy of the default openvino recipe with ``input_layout = layout``."""
    from vmf_deploy.export.recipes import default_recipe_path, load_recipe
    from vmf_deploy.export.targets import get_target

    target = get_target("openvino")
    source = default_recipe_path(target)
    current = LAYOUT_LINE.format(load_recipe(target).options["input_layout"])
    text = source.read_text()
    if current not in text:
        raise SystemExit(f"{source} has no '{current}' line to edit")
    path = folder / f"openvino-{layout}.toml"
    path.write_text(text.replace(current, LAYOUT_LINE.format(layout)))
    return path


def input_node_ms(artifact: Path, config: dict, clip, runs: int = 5) -> tuple[str, float]:  # noqa: ANN001
    """The slowest node that reads the model input (``PERF_COUNT``, mean over ``runs``): its exec type and ms."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(artifact), "CPU", {**config, "PERF_COUNT": "YES"})
    request = compiled.create_infer_request()
    request.infer({0: clip})
    totals: dict[tuple[str, str], float] = {}
    for _ in range(runs):
        request.infer({0: clip})
        for info in request.profiling_info:
            if info.node_name.startswith("video"):
                key = (info.node_name, info.exec_type)
                totals[key] = totals.get(key, 0.0) + info.real_time.total_seconds() * 1e3 / runs
    if not totals:
        return "none", 0.0
    (_, exec_type), ms = max(totals.items(), key=lambda kv: kv[1])
    return exec_type, ms


def main(argv: list[str] | None = None) -> int:
    """Export both layouts, time them in turns; print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["560m", "1g", "2g", "5g", "x3d-xs", "x3d-s"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=5, help="timed runs per configuration per round")
    parser.add_argument("--out", type=Path, default=RESULTS / "openvino_input_layout.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    import numpy as np

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.pipeline import export_model
    from vmf_deploy.manifest import write_json_atomic
    from vmf_deploy.parity import parity_clips
    from vmf_deploy.preprocess import to_layout
    from vmf_deploy.runners.openvino_cpu import OpenVINOCPURunner

    device = host_device_info()
    load_before = [round(x, 2) for x in os.getloadavg()]
    print(f"{describe(device)}; {args.frames} frames, {args.threads} threads, load average {load_before}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recipes = {layout: recipe_with_layout(layout, folder) for layout in ("NCTHW", "NTHWC")}
        for variant in args.variants:
            runners, artifacts = {}, {}
            for layout, recipe in recipes.items():
                export = export_model(variant, "openvino", folder / f"{variant}-{layout}", frames=args.frames,
                                      recipe_path=recipe)
                runners[layout] = OpenVINOCPURunner(threads=args.threads)
                runners[layout].load(export.artifact)
                artifacts[layout] = export.artifact
                rewrites = [r["name"] for r in export.manifest["export"]["rewrites"] if r["count"]]
                print(f"  {variant:<6} {layout} IR: rewrites {', '.join(rewrites)}", flush=True)
            shape = tuple(export.manifest["input"]["shape"])
            planar = parity_clips(shape, [0])[0]
            last = to_layout(planar, "NTHWC")
            feeds = {"NCTHW IR, planar clip": ("NCTHW", planar),
                     "NTHWC IR, channels-last clip": ("NTHWC", last),
                     "NTHWC IR, planar clip (runner transposes)": ("NTHWC", planar)}
            expected = runners["NCTHW"].run(planar)
            error = float(np.abs(runners["NTHWC"].run(last) - expected).max())
            samples: dict[str, list[float]] = {name: [] for name in feeds}
            names = list(feeds)
            for r in range(args.rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    layout, clip = feeds[name]
                    runners[layout].run(clip)
                    for _ in range(args.block):
                        t = time.perf_counter()
                        runners[layout].run(clip)
                        samples[name].append((time.perf_counter() - t) * 1e3)
            base = statistics.median(samples[names[0]])
            for name in names:
                layout, clip = feeds[name]
                exec_type, node_ms = input_node_ms(artifacts[layout], runners[layout].config,
                                                 runners[layout].feed(clip))
                med = statistics.median(samples[name])
                rows.append({"variant": variant, "input": name, "median_ms": round(med, 2),
                             "ratio_to_ncthw": round(med / base, 3), "input_node": exec_type,
                             "input_node_ms": round(node_ms, 2), "max_abs_error_vs_ncthw": error,
                             "samples_ms": samples[name]})
                print(f"  {variant:<6} {name:<44} {med:7.2f} ms  ÷ NCTHW {med / base:.3f}   input node {exec_type} "
                      f"{node_ms:.2f} ms", flush=True)
            for runner in runners.values():
                runner.close()
    load_after = [round(x, 2) for x in os.getloadavg()]
    write_json_atomic(args.out, {"tool": "benchmarks/openvino_input_layout.py", "command": " ".join(sys.argv),
                                 "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
                                 "load_average_before": load_before, "load_average_after": load_after,
                                 "frames": args.frames, "threads": args.threads, "rounds": args.rounds,
                                 "block": args.block, "results": rows})
    print(f"load average after {load_after}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
