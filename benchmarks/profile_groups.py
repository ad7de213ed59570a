"""Per-op profiles of ``vmf-bench --profile`` runs, summed into op groups, side by side.

    .venv/bin/vmf-bench --backend executorch-xnnpack --artifact A.pte --profile --runs 20 --json a.json
    .venv/bin/vmf-bench --backend executorch-xnnpack --artifact B.pte --profile --runs 20 --json b.json
    .venv/bin/python benchmarks/profile_groups.py fp32=a.json int8=b.json --out benchmarks/results/profile_groups.json
    .venv/bin/python benchmarks/profile_groups.py --backend executorch-xnnpack --in-turns fp32=A.pte int8=B.pte \
        --rounds 3 --runs 30 --out benchmarks/results/profile_groups.json

Each ``NAME=FILE`` is a ``vmf-bench --json`` file whose first result holds a profile (ETDump, onnxruntime's
profiler or OpenVINO's ``PERF_COUNT``). Its ops are summed into groups by name: convolutions, linears, the
attention's softmax and batch matmuls, layout ops (transposes, reshapes, slices, pads, copies), element-wise
ops, int8 ↔ fp32 conversions (``Convert``, ``QuantizeLinear`` / ``DequantizeLinear``, ``FakeQuantize``). The runs
are profiled one after the other, so compare the groups within a column and their shares, not the totals
across columns: a latency ratio comes from timing in turns (``int8_recipe_ab.py``).

``--in-turns NAME=ARTIFACT ...`` profiles the artifacts itself, in the named ``--backend`` (2 threads), taking
turns: per round, each artifact is profiled over ``--runs`` runs with the profiler ``vmf-bench --profile`` uses,
and each group's and op's figure is the median over ``--rounds`` rounds. The artifacts see the same machine
drift, so the columns can be compared with each other (one ``vmf-bench`` profile of 560m's int8 program read its
fp32 batch matmuls 2× slower than the fp32 program's; in turns they were 1.07× slower). Prints the table (and
with ``--in-turns`` the largest ops) and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "profile_groups.json"
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("int8 <-> fp32 conversion", ("convert", "quantizelinear", "dequantizelinear", "fakequantize")),
    ("attention: softmax, batch matmul", ("softmax", "batch matrix")),
    ("convolution", ("convolution", "conv")),
    ("linear", ("fully connected", "gemm", "matmul", "fullyconnected")),
    ("layout: transpose, reshape, slice, pad, copy", ("transpose", "reshape", "slice", "pad", "copy", "reorder",
                                                       "concat", "gather")),
    ("element-wise: add, mul, clamp", ("add", "multiply", "mul", "clamp", "subtract", "eltwise", "relu")),
)
"""Group name → lower-case substrings of an op name; the first group that matches wins, so ``Convert`` is a
conversion, not a convolution, and XNNPACK's ``Batch Matrix Multiply ... GEMM`` is attention, not a linear."""


def group_of(op: str) -> str:
    """The group of a profiled op name."""
    name = op.lower()
    return next((group for group, keys in GROUPS if any(key in name for key in keys)), "other (means, pooling, ...)")


def grouped(path: Path) -> dict[str, float]:
    """ms per clip of each group in the profile of a ``vmf-bench --json`` file."""
    result = json.loads(path.read_text())["results"][0]
    profile = result.get("profile")
    if not profile or "ops" not in profile:
        raise SystemExit(f"{path}: no per-op profile (run vmf-bench with --profile)")
    return grouped_ops(profile["ops"])


def grouped_ops(ops: list[dict]) -> dict[str, float]:
    """ms per clip of each group, from a profile's ``ops`` rows."""
    totals: dict[str, float] = {}
    for op in ops:
        totals[group_of(op["op"])] = totals.get(group_of(op["op"]), 0.0) + op["total_ms"]
    return totals


def profiled_in_turns(artifacts: dict[str, Path], backend: str, rounds: int, runs: int,
                      threads: int) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """``({name: {group: ms}}, {name: {op: ms}})``: medians over ``rounds`` rounds in which each artifact is
    profiled over ``runs`` runs in turn (the order rotating), on one random clip of the manifest's input shape."""
    import tempfile

    import numpy as np

    from vmf_deploy.bench.profile import profile_runner
    from vmf_deploy.manifest import manifest_path
    from vmf_deploy.preprocess import to_layout
    from vmf_deploy.runners import get_runner

    runners, feeds = {}, {}
    for name, path in artifacts.items():
        shape = json.loads(manifest_path(path).read_text())["input"]["shape"]  # NCTHW order, whatever the layout
        clip = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        runners[name] = get_runner(backend, threads=threads)
        runners[name].load(path)
        feeds[name] = to_layout(clip, runners[name].input_layout)
    per_round: dict[str, list[list[dict]]] = {name: [] for name in artifacts}
    with tempfile.TemporaryDirectory(prefix="profile-in-turns-") as scratch:
        for index in range(rounds):
            names = list(runners)
            for name in names[index % len(names):] + names[:index % len(names)]:
                out = Path(scratch) / f"{name}-{index}"
                per_round[name].append(profile_runner(runners[name], feeds[name], runs, out, artifacts[name])["ops"])
    for runner in runners.values():
        runner.close()

    def medians(tables: list[dict[str, float]]) -> dict[str, float]:
        keys = {key for table in tables for key in table}
        return {key: statistics.median(table.get(key, 0.0) for table in tables) for key in keys}

    groups = {name: medians([grouped_ops(ops) for ops in tables]) for name, tables in per_round.items()}
    ops = {name: medians([{op["op"]: op["total_ms"] for op in ops} for ops in tables])
           for name, tables in per_round.items()}
    return groups, ops


def main(argv: list[str] | None = None) -> int:
    """Group each profile, print the groups side by side with their shares, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="*", help="NAME=FILE: a vmf-bench --json file with a profile")
    parser.add_argument("--in-turns", nargs="+", metavar="NAME=ARTIFACT",
                        help="profile these artifacts here, in turns, instead of reading vmf-bench files")
    parser.add_argument("--backend", help="the vmf-bench backend that runs the --in-turns artifacts")
    parser.add_argument("--rounds", type=int, default=3, help="--in-turns rounds (default 3)")
    parser.add_argument("--runs", type=int, default=30, help="--in-turns profiled runs per artifact and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if bool(args.profiles) == bool(args.in_turns):
        parser.error("give either NAME=FILE profiles or --in-turns NAME=ARTIFACT ...")
    if args.in_turns and not args.backend:
        parser.error("--in-turns needs --backend (executorch-xnnpack, openvino-cpu, onnxruntime-cpu, ...)")
    columns: dict[str, dict[str, float]] = {}
    sources: dict[str, dict] = {}
    ops: dict[str, dict[str, float]] = {}
    pairs = []
    for item in args.profiles or args.in_turns:
        name, sep, file = item.partition("=")
        if not sep:
            parser.error(f"{item!r}: give NAME=FILE")
        pairs.append((name, file))
    if args.in_turns:
        from vmf_deploy.bench.machine import describe, host_device_info

        artifacts = {name: Path(file) for name, file in pairs}
        columns, ops = profiled_in_turns(artifacts, args.backend, args.rounds, args.runs, args.threads)
        device = describe(host_device_info())
        sources = {name: {"artifact": str(path), "backend": args.backend, "device": device, "rounds": args.rounds,
                          "runs": args.runs, "threads": args.threads} for name, path in artifacts.items()}
    for name, file in ([] if args.in_turns else pairs):
        columns[name] = grouped(Path(file))
        data = json.loads(Path(file).read_text())
        sources[name] = {"file": file, "artifact": data["results"][0].get("artifact"),
                         "device": data.get("device"), "created": data.get("created")}
    first = next(iter(columns.values()))
    groups = sorted({g for c in columns.values() for g in c}, key=lambda g: -first.get(g, 0.0))
    print(f"{'ms per clip (share)':<46}" + "".join(f"{name:>20}" for name in columns))
    for group in groups:
        print(f"{group:<46}" + "".join(f"{c.get(group, 0.0):10.2f} ({c.get(group, 0.0) / sum(c.values()):5.1%})"
                                       for c in columns.values()))
    print(f"{'total':<46}" + "".join(f"{sum(c.values()):20.2f}" for c in columns.values()))
    for name, table in ops.items():
        largest = sorted(table.items(), key=lambda item: -item[1])[:8]
        print(f"{name}: " + "; ".join(f"{op} {ms:.3f}" for op, ms in largest))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "tool": "benchmarks/profile_groups.py",
              "command": " ".join(sys.argv), "sources": sources, "groups_ms": columns}
    if ops:
        result["ops_ms"] = ops
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
