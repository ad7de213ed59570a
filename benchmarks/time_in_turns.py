"""Artifacts timed in turns on one clip: medians, and each one's ratio to the first.

    .venv/bin/python benchmarks/time_in_turns.py fp32=a/2g-64f.pte before=b/2g-64f-int8.pte \
        after=c/2g-64f-int8.pte --backend executorch-xnnpack --out benchmarks/results/turns.json
    .venv/bin/python benchmarks/time_in_turns.py ort=a/2g-64f.onnx et=b/2g-64f.pte ov=c/2g-64f.xml --backend auto

``--backend auto`` runs each artifact on its manifest's target's CPU backend (onnxruntime, ExecuTorch XNNPACK,
OpenVINO), so runtimes are compared in the same turns.

For an A/B of code rather than of a recipe key (``int8_recipe_ab.py`` covers those): export the
same variant with each commit (a ``git worktree`` of the parent on ``PYTHONPATH``), then time the
artifacts here. Each artifact's manifest gives the input shape; the clip is seeded noise. Every
round runs each artifact once untimed and ``--block`` times timed, in rotated order
(``int8.py``'s ``interleaved_ms``), so a drift of the VM's speed lands on all of them alike. Prints a
table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from int8 import BACKENDS, REPO, interleaved_ms


def main(argv: list[str] | None = None) -> int:
    """Time the artifacts in turns, print medians and ratios, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifacts", nargs="+", help="NAME=FILE: an exported artifact with its manifest beside it")
    parser.add_argument("--backend", default="executorch-xnnpack",
                        help="the runner of every artifact, or 'auto': each manifest's target's CPU backend")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of turns (default 8)")
    parser.add_argument("--block", type=int, default=5, help="timed runs per artifact per round (default 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "time_in_turns.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    import numpy as np

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.manifest import manifest_path

    artifacts: dict[str, Path] = {}
    for item in args.artifacts:
        name, sep, file = item.partition("=")
        if not sep or not Path(file).is_file():
            parser.error(f"{item!r}: give NAME=FILE, an existing artifact")
        artifacts[name] = Path(file)
    manifests = {name: json.loads(manifest_path(path).read_text()) for name, path in artifacts.items()}
    shapes = {tuple(m["input"]["shape"]) for m in manifests.values()}
    if len(shapes) != 1:
        parser.error(f"the artifacts take different inputs {sorted(shapes)}: time one variant and input at a time")
    clip = np.random.default_rng(0).standard_normal(shapes.pop()).astype(np.float32)
    device = host_device_info()
    started = datetime.now(timezone.utc)
    if args.backend == "auto":
        unknown = sorted({m["artifact"]["target"] for m in manifests.values()} - set(BACKENDS))
        if unknown:
            parser.error(f"--backend auto times {', '.join(BACKENDS)} artifacts, not {', '.join(unknown)}")
        backends = {name: BACKENDS[m["artifact"]["target"]] for name, m in manifests.items()}
    else:
        from vmf_deploy.runners import BACKENDS as RUNNERS

        if args.backend not in RUNNERS:
            parser.error(f"--backend {args.backend!r}: give 'auto' or one of {', '.join(RUNNERS)}")
        backends = dict.fromkeys(artifacts, args.backend)
    ms = interleaved_ms(artifacts, backends, clip, args.rounds, args.block, args.threads)
    first = next(iter(ms.values()))
    print(f"{args.threads} threads, {describe(device)}, input {list(clip.shape)}")
    for name, value in ms.items():
        print(f"{name:<16}{backends[name]:<22}{value:10.2f} ms{value / first:8.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "created": started.isoformat(timespec="seconds"), "device": device, "backend": args.backend,
        "threads": args.threads, "rounds": args.rounds, "block": args.block, "input_shape": list(clip.shape),
        "results": [{"name": name, "artifact": str(artifacts[name]), "backend": backends[name],
                     "precision": manifests[name]["artifact"]["precision"], "median_ms": value,
                     "ratio_to_first": value / first} for name, value in ms.items()],
    }, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
