"""Export matrix: every VMF variant × every target at the paper's 64 frames, through the real pipeline.

Each (variant, target) export runs ``export_model`` (rewrites, lowering, parity gate, manifest)
in its own worker process (``vmf_deploy.export.parallel``), ``--jobs`` at a time, as
``vmf-export --jobs`` does. Per cell it records the time of each step, the total, the graph's
node count (ONNX nodes, ExecuTorch delegated + portable ops, CoreML MIL ops), the artifact size,
the peak memory of its process, parity, and the ExecuTorch delegation; a failed export is
recorded with its message. It prints the table beside issue 18's targets (≤ 60 s per cell,
≤ 5 min for the whole matrix) and writes JSON. The parity gate's reference-logits cache
(``vmf_deploy.export.reference_cache``) starts empty in every run, so a variant's first gated
target computes its reference and the next reads it, as in one ``vmf-export --target all``.

    .venv/bin/python benchmarks/export_matrix.py                     # 4 variants × 3 targets, 64 frames
    .venv/bin/python benchmarks/export_matrix.py --variants 560m --targets onnx --frames 16 --jobs 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from vmf_deploy.bench.machine import cpu_model, isa_flags
from vmf_deploy.cli.quiet import third_party_output_to
from vmf_deploy.export.parallel import ExportOutcome, default_jobs, run_exports

RESULTS = Path(__file__).resolve().parent / "results" / "export_matrix.json"
CELL_TARGET_S = 60.0
"""Issue 18: every variant to every target within a minute, parity gate included."""
MATRIX_TARGET_S = 300.0
"""Issue 18: all 4 variants × all targets within 5 minutes of wall time."""


def machine() -> dict:
    """What the numbers were measured on."""
    return {"cpu": cpu_model(), "isa": isa_flags(), "cores": os.cpu_count(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def graph_nodes(manifest: dict) -> int | None:
    """The exported graph's size: ONNX nodes / CoreML MIL ops, or ExecuTorch delegated + portable ops."""
    delegation = manifest["export"]["delegation"]
    if delegation:
        return delegation["delegated_ops"] + delegation["portable_ops"]
    graph = manifest["export"].get("graph") or {}
    return graph.get("nodes")


def row_of(outcome: ExportOutcome, frames: int) -> dict:
    """One matrix row from an export's outcome (its artifact is deleted afterwards)."""
    variant, target = outcome.cell
    row: dict = {"variant": variant, "target": target, "frames": frames, "seconds": round(outcome.seconds, 1),
                 "peak_rss_mib": round(outcome.peak_rss_mib)}
    if outcome.result is None:
        row.update(status="failed", error=outcome.error)
        return row
    m = outcome.result.manifest
    delegation = m["export"]["delegation"]
    row.update(
        status=m["parity"]["status"], steps=step_seconds(outcome.result.steps), nodes=graph_nodes(m),
        artifact=m["artifact"]["file"], size_bytes=m["artifact"]["size_bytes"], params=m["model"]["params"],
        flops=m["model"]["flops"], parity=m["parity"]["metrics"], parity_runtime=m["parity"]["runtime"],
        rewrites=m["export"]["rewrites"],
        delegation=None if delegation is None else {
            k: delegation[k] for k in ("compute_ops_delegated_pct", "delegated_ops", "portable_ops",
                                       "delegated_subgraphs", "compute_ops")})
    artifact = outcome.result.artifact
    if artifact.is_dir():
        shutil.rmtree(artifact, ignore_errors=True)
    else:
        artifact.unlink(missing_ok=True)
    return row


def step_seconds(steps: list[tuple[str, float]]) -> dict[str, float]:
    """Seconds per step name, summed over repeats (ONNX rewrites run at the module and the graph stage)."""
    out: dict[str, float] = {}
    for name, seconds in steps:
        out[name] = round(out.get(name, 0.0) + seconds, 2)
    return out


def parity_text(row: dict) -> str:
    """Parity cell: metrics when measured, else the status."""
    p = row.get("parity")
    if not p:
        return row["status"]
    return f"rel {p['max_rel_error']:.1e}, cos {p['min_cosine']:.7f}, top-1 {p['top1_agreement']:.0%}"


def steps_text(row: dict) -> str:
    """The steps that took a second or more, largest first."""
    steps = sorted((row.get("steps") or {}).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {sec:.0f}" for name, sec in steps if sec >= 1.0) or "—"


def markdown_table(rows: list[dict]) -> str:
    """The matrix as a Markdown table (for the README and docs/export.md)."""
    lines = [("| variant | target | status | time (≤ 60 s?) | steps (s) | nodes | size | peak RSS "
              "| parity vs PyTorch fp32 |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        size = f"{r['size_bytes'] / 2**20:.1f} MiB" if "size_bytes" in r else "—"
        met = "yes" if r["seconds"] <= CELL_TARGET_S else f"no, {r['seconds'] / CELL_TARGET_S:.1f}×"
        lines.append(f"| {r['variant']} | {r['target']} | {r['status']} | {r['seconds']:.1f} s ({met}) | "
                     f"{steps_text(r)} | {r.get('nodes') or '—'} | {size} | {r['peak_rss_mib'] / 1024:.1f} GiB | "
                     f"{parity_text(r)} |")
    return "\n".join(lines)


def main() -> None:
    """Run the matrix, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["560m", "1g", "2g", "5g"])
    parser.add_argument("--targets", nargs="+", default=["onnx", "executorch", "coreml", "openvino"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--jobs", type=int, help="exports at once (default: vmf-export's, one per core)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    cells = [(v, t) for v in args.variants for t in args.targets]
    jobs = args.jobs or default_jobs(len(cells))
    rows: list[dict] = []
    record = {"benchmark": "export_matrix", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "frames": args.frames, "jobs": jobs,
              "reference_cache": "cold: a fresh folder per run, shared by a variant's targets", "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    print(f"{len(cells)} exports, {jobs} at a time, {args.frames} frames, on {record['machine']['cpu']}", flush=True)
    start = time.perf_counter()
    log = args.json.with_suffix(".log")
    log.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="vmf-export-matrix-") as work, third_party_output_to(log):
        os.environ["VMF_CACHE"] = str(Path(work) / "cache")  # the gate's reference logits start cold
        outcomes = run_exports(cells, {"out_dir": Path(work), "frames": args.frames, "force": True}, jobs,
                               processes=True)
    print(f"what the libraries printed (the exports' workers included) is in {log}", flush=True)
    record["wall_seconds"] = round(time.perf_counter() - start, 1)
    record["serial_seconds"] = round(sum(o.seconds for o in outcomes), 1)
    rows.extend(row_of(o, args.frames) for o in outcomes)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(markdown_table(rows))
    ratio = record["wall_seconds"] / MATRIX_TARGET_S
    met = "met" if ratio <= 1 else f"missed by {ratio:.1f}×"
    print(f"\nwall {record['wall_seconds']:.0f} s with {jobs} jobs (the exports alone add up to "
          f"{record['serial_seconds']:.0f} s); the 5-minute target is {met}")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
