"""Export matrix: every VMF variant × every target at the paper's 64 frames, through the real pipeline.

For each (variant, target) it runs ``export_model`` (rewrites, lowering, parity gate,
manifest) and records the export time, artifact size, parity figures and the
ExecuTorch delegation summary; a failed export is recorded as failed with its message
instead of stopping the matrix. Prints a table and writes JSON.

    .venv/bin/python benchmarks/export_matrix.py                     # 4 variants × 3 targets, 64 frames
    .venv/bin/python benchmarks/export_matrix.py --variants 560m --targets onnx --frames 16
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import torch

from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.pipeline import export_model

RESULTS = Path(__file__).resolve().parent / "results" / "export_matrix.json"


def machine() -> dict:
    """What the numbers were measured on."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def run_one(variant: str, target: str, frames: int, work: Path) -> dict:
    """Export one cell into ``work`` and return its row (the artifact is deleted afterwards)."""
    out = work / f"{variant}-{target}"
    row: dict = {"variant": variant, "target": target, "frames": frames}
    start = time.perf_counter()
    try:
        result = export_model(variant, target, out, frames=frames)
    except ExportError as e:
        row.update(status="failed", error=str(e), seconds=round(time.perf_counter() - start, 1))
        return row
    m = result.manifest
    delegation = m["export"]["delegation"]
    row.update(
        status=m["parity"]["status"], seconds=round(time.perf_counter() - start, 1),
        steps=step_seconds(result.steps),
        artifact=m["artifact"]["file"], size_bytes=m["artifact"]["size_bytes"], params=m["model"]["params"],
        flops=m["model"]["flops"], parity=m["parity"]["metrics"], parity_runtime=m["parity"]["runtime"],
        rewrites=m["export"]["rewrites"],
        delegation=None if delegation is None else {
            k: delegation[k] for k in ("compute_ops_delegated_pct", "delegated_ops", "portable_ops",
                                       "delegated_subgraphs", "compute_ops")})
    shutil.rmtree(out, ignore_errors=True)
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


def delegation_text(row: dict) -> str:
    """Delegation cell (ExecuTorch only)."""
    d = row.get("delegation")
    if not d:
        return "—"
    return (f"{d['compute_ops_delegated_pct']:.0f}% compute ({d['compute_ops']['delegated']} ops), "
            f"{d['delegated_ops']} delegated / {d['portable_ops']} portable ops")


def markdown_table(rows: list[dict]) -> str:
    """The matrix as a Markdown table (for docs/export.md)."""
    lines = ["| variant | target | status | export time | size | parity vs PyTorch fp32 | XNNPACK delegation |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        size = f"{r['size_bytes'] / 2**20:.1f} MiB" if "size_bytes" in r else "—"
        lines.append(f"| {r['variant']} | {r['target']} | {r['status']} | {r['seconds']:.1f} s | {size} | "
                     f"{parity_text(r)} | {delegation_text(r)} |")
    return "\n".join(lines)


def main() -> None:
    """Run the matrix, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["560m", "1g", "2g", "5g"])
    parser.add_argument("--targets", nargs="+", default=["onnx", "executorch", "coreml"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (reference + export)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    record = {"benchmark": "export_matrix", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "frames": args.frames, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vmf-export-matrix-") as work:
        for variant in args.variants:
            for target in args.targets:
                row = run_one(variant, target, args.frames, Path(work))
                rows.append(row)
                print(f"{variant:>5} {target:<10} {row['status']:<36} {row['seconds']:7.1f} s  {parity_text(row)}",
                      flush=True)
                args.json.write_text(json.dumps(record, indent=2) + "\n")  # partial results survive a kill
    print()
    print(markdown_table(rows))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
