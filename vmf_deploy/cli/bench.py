"""``vmf-bench``: latency, memory and parity of Video Mobile-Former on every backend, peers side by side.

Example::

    vmf-bench --backend torch-cpu --backend onnxruntime-cpu --backend executorch-xnnpack \\
              --variant 560m --frames 16 --runs 10 --peers x3d-s --json out.json --plot out.png

Backends that cannot run on this machine are rows ``skipped: <why>``; a backend that fails
is a row ``failed: <why>`` and the others go on (exit code 1 when any row failed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from .common import fail, output_file_problem, output_folder_problem, resolve_variants

PROG = "vmf-bench"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the command line."""
    from ..bench.harness import PEERS, all_backends

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", required=True, metavar="B",
                        help=f"backend to measure (repeatable): {', '.join(all_backends())}, or 'all'")
    parser.add_argument("--variant", nargs="+", default=None,
                        help="registry name(s) or 'all' (default: the --artifact's variant)")
    parser.add_argument("--artifact", action="append", default=[], type=Path, metavar="PATH",
                        help="use this exported artifact (its manifest beside it) for the backends that run its "
                             "format, instead of exporting (repeatable: one per format)")
    parser.add_argument("--frames", type=int, default=None, help="input frames (default: each model's, 64)")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                        help="precision of the artifacts vmf-bench exports (int8: calibrated on the synthetic "
                             "dataset; eager PyTorch rows stay fp32); an --artifact keeps its own (default fp32)")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads for every runtime (default: physical cores)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing (default 2)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs (default 10)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure the whole matrix this many times, backend order rotating, and pool the "
                             "samples (default 1; use 3+ on a machine whose speed drifts)")
    parser.add_argument("--peers", default="",
                        help=f"comma-separated peers measured in the same run ({','.join(PEERS)})")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the results document here")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE", help="write a latency-vs-GFLOPs PNG here")
    parser.add_argument("--profile", action="store_true", help="also write a per-op time breakdown per backend")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep exported artifacts, clips and profiler traces here (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per measurement (default 1800)")
    parser.add_argument("--verbose", action="store_true",
                        help="show what the libraries print while exporting (by default it goes to a temp log file)")
    args = parser.parse_args(argv)
    backends: list[str] = []
    for b in args.backend:
        backends.extend(all_backends() if b == "all" else [b])
    unknown = [b for b in backends if b not in all_backends()]
    if unknown:
        fail(PROG, f"unknown backend(s) {unknown}; valid backends: {', '.join(all_backends())}")
    args.backends = list(dict.fromkeys(backends))
    for name, value, low in (("--frames", args.frames, 1), ("--threads", args.threads, 1),
                             ("--warmup", args.warmup, 0), ("--runs", args.runs, 1),
                             ("--rounds", args.rounds, 1)):
        if value is not None and value < low:
            fail(PROG, f"{name} must be >= {low}, got {value}")
    peers = [p for p in (s.strip() for s in args.peers.split(",")) if p]
    bad = [p for p in peers if p not in PEERS]
    if bad:
        fail(PROG, f"unknown peer(s) {bad}; valid peers: {', '.join(PEERS)}")
    args.peer_list = peers
    problems = [output_file_problem("--json", args.json, "results.json") if args.json else None,
                output_file_problem("--plot", args.plot, "latency.png") if args.plot else None,
                output_folder_problem("--workdir", args.workdir) if args.workdir else None]
    for problem in filter(None, problems):
        fail(PROG, problem)
    return args


def artifact_defaults(artifacts: list[Path]) -> dict:
    """Variant, frames and seed of the given artifacts, read from their manifests (all must agree)."""
    from ..manifest import ManifestError, manifest_path, read_manifest, verify_artifact

    found: dict = {}
    for path in artifacts:
        if not path.exists():
            fail(PROG, f"artifact {path} not found")
        try:
            manifest = read_manifest(manifest_path(path))
            verify_artifact(path, manifest)
        except ManifestError as e:
            fail(PROG, str(e))
        source = manifest["model"].get("source") or {}
        if source.get("kind") == "checkpoint":
            fail(PROG, f"{path} was exported from a checkpoint: vmf-bench's parity reference is the seeded init; "
                       "benchmark an artifact exported without --checkpoint, or pass --variant and let vmf-bench "
                       "export")
        info = {"variant": manifest["model"]["variant"], "frames": manifest["input"]["shape"][2],
                "seed": source.get("seed", 0)}
        if found and info != found:
            fail(PROG, f"the --artifact files disagree: {found} vs {info} ({path})")
        found = info
    return found


def status_cell(status: str) -> str:
    """Status with rich colour markup."""
    if status == "ok":
        return "[green]ok[/green]"
    colour = "yellow" if status.startswith("skipped") else "red"
    return f"[{colour}]{status}[/{colour}]"


def table_row(r: dict) -> list[str]:
    """One terminal-table row of a result (— for what was not measured)."""
    def num(v: float | None, fmt: str) -> str:
        return "—" if v is None else format(v, fmt)

    lat = r["latency_ms"] or {}
    parity = r["parity"]
    parity_cell = "—" if parity is None else (f"{parity['max_rel_error']:.1e} · top1 "
                                             f"{parity['top1_agreement']:.0%}")
    size = None if r["artifact"] is None else r["artifact"]["size_bytes"] / 2**20
    mem = r["memory"] or {}
    peak = mem.get("inference_rss_bytes")
    budget = mem.get("weights_bytes", 0) + mem.get("activation_set_bytes", 0)
    peak_cell = "—" if peak is None else f"{peak / 2**20:.0f}" + (f" ({peak / budget:.1f}×)" if budget else "")
    precision = "fp32" if r["artifact"] is None else r["artifact"].get("precision", "fp32")
    return [r["backend"], r["variant"], precision, status_cell(r["status"]), num(size, ".1f"),
            num(None if r["flops"] is None else r["flops"] / 1e9, ".3f"),
            r["latency"].removeprefix("not measured: ") if r.get("latency") else num(lat.get("median"), ".1f"),
            num(lat.get("p90"), ".1f"), num(r["clips_per_s"], ".2f"), peak_cell, parity_cell]


COLUMNS = ("backend", "variant", "precision", "status", "size MB", "GFLOPs", "median ms", "p90 ms", "clips/s", "peak MB (÷ W+A)", "parity")


def print_table(results: list[dict], title: str) -> None:
    """The results as a rich table (Ultralytics-benchmark style)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("backend", "variant", "precision", "status") else "right",
                         overflow="fold")
    for r in results:
        table.add_row(*table_row(r))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def print_profiles(results: list[dict], top: int = 15) -> None:
    """Per-op breakdown of every profiled result, slowest op first."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    for r in results:
        if r["status"] != "ok":
            continue
        prof = r.get("profile")
        if prof is None:
            console.print(f"[yellow]{r['backend']}/{r['variant']}: no per-op profile "
                          f"({r.get('profile_note', 'not available')})[/yellow]")
            continue
        table = Table(title=f"{r['backend']} / {r['variant']}: per-op time per clip ({prof['source']})")
        for col in ("op", "ms per clip", "calls", "share"):
            table.add_column(col, justify="left" if col == "op" else "right")
        for op in prof["ops"][:top]:
            table.add_row(op["op"], f"{op['total_ms']:.2f}", str(op["calls"]), f"{op['share']:.1%}")
        console.print(table)
        if prof.get("file"):
            console.print(f"trace: {prof['file']}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vmf-bench``."""
    args = parse_args(argv)
    from ..bench.harness import BenchSettings, build_document, default_threads, run_matrix
    from ..bench.machine import describe, host_device_info
    from ..bench.schema import BenchSchemaError
    from ..manifest import write_json_atomic
    from ..models import ConfigError

    given = artifact_defaults(args.artifact) if args.artifact else {}
    try:
        variants = resolve_variants(args.variant) if args.variant else ([given["variant"]] if given else [])
    except ConfigError as e:
        fail(PROG, str(e))
    if not variants:
        fail(PROG, "pass --variant NAME (or 'all'), or an --artifact whose manifest names it")
    if given and variants != [given["variant"]]:
        fail(PROG, f"--artifact holds variant {given['variant']!r}; benchmark it alone (--variant {given['variant']})")
    variants += [p for p in args.peer_list if p not in variants]
    frames = args.frames if args.frames is not None else given.get("frames")
    if given and args.frames is not None and args.frames != given["frames"]:
        fail(PROG, f"--artifact was exported for {given['frames']} frames, not --frames {args.frames}")
    try:
        settings = BenchSettings(threads=args.threads or default_threads(), warmup=args.warmup, runs=args.runs,
                                 frames=frames, seed=given.get("seed", 0), profile=args.profile,
                                 timeout_s=args.timeout, rounds=args.rounds, precision=args.precision)
    except ValueError as e:
        fail(PROG, str(e))
    device = host_device_info()
    print(f"{PROG}: {describe(device)}; {settings.threads} thread(s), {settings.warmup} warm-up + "
          f"{settings.runs} timed runs per clip", flush=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vmf-bench-"))

    from .quiet import libraries_quiet

    try:
        with libraries_quiet(PROG, args.verbose) as (out, _):
            def progress(r: dict) -> None:
                lat = r["latency_ms"]
                detail = f" median {lat['median']:.1f} ms" if lat else ""
                print(f"  {r['backend']:<22} {r['variant']:<8} {r['status']}{detail}", file=out, flush=True)

            results = run_matrix(args.backends, variants, settings, workdir, args.artifact, on_result=progress)
    finally:
        if args.workdir is None and not args.profile:
            shutil.rmtree(workdir, ignore_errors=True)
    command = " ".join([PROG, *(argv if argv is not None else sys.argv[1:])])
    try:
        doc = build_document(results, settings, device, command)
    except BenchSchemaError as e:  # a bug in a producer: say so rather than write a bad file
        fail(PROG, f"the results do not follow the schema ({e}); please report this", code=1)
    frames_note = f"{frames} frames" if frames else "default frames"
    print_table(results, f"vmf-bench ({frames_note}, {settings.threads} threads, batch 1, "
                         f"{settings.precision} artifacts)")
    if args.profile:
        print_profiles(results)
        if args.workdir is None:
            print(f"profiler traces kept in {workdir}")
    if args.json:
        write_json_atomic(args.json, doc)
        print(f"results: {args.json}")
    if args.plot:
        from ..bench.plot import plot_results

        try:
            plot_results(results, args.plot)
            print(f"plot: {args.plot}")
        except ValueError as e:
            print(f"{PROG}: no plot: {e}", file=sys.stderr)
    return 1 if any(r["status"].startswith("failed") for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
