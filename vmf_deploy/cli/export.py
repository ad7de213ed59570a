"""``vmf-export``: export Video Mobile-Former to ONNX, ExecuTorch (XNNPACK), CoreML or OpenVINO, gated on parity.

Each artifact is written with ``<artifact>.manifest.json`` and the label file beside it,
only after it ran in its runtime and matched PyTorch fp32 within the recipe's tolerance.
Without --checkpoint the deterministic seeded init (seed 0) is exported.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from vmf_deploy.export.targets import TARGETS  # stdlib only: --help stays instant

if TYPE_CHECKING:  # heavy imports (torch, exporters) happen after argument parsing
    from rich.console import Console

    from vmf_deploy.export.pipeline import ExportResult

PROG = "vmf-export"
LOG_NAME = "vmf-export.log"
"""The third-party output of a run, in the output directory."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (stdlib only, so ``--help`` is instant)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  vmf-export --variant 560m --target coreml\n"
               "  vmf-export --variant all --target all --frames 16 --out artifacts\n"
               "  vmf-export --variant 1g --target onnx --checkpoint 1g.safetensors --force\n"
               "  vmf-export --variant 560m --target executorch --checkpoint run/last.safetensors "
               "--precision int8 --calibration synthetic\n"
               "  vmf-export --variant 560m --target executorch --checkpoint run/last.safetensors "
               "--precision int8 --calibration synthetic --set quantization.qat_steps=2048\n"
               "recipes: export/<target>.toml (see docs/export.md)")
    parser.add_argument("--variant", required=True,
                        help="registry name (560m, 1g, 2g, 5g, mobile3d-*, ... see vmf-info) or 'all'")
    parser.add_argument("--target", required=True, choices=(*TARGETS, "all"), help="export target, or 'all'")
    parser.add_argument("--checkpoint", type=Path, help="a vmf-deploy checkpoint (.safetensors) of --variant; its "
                        "class names and preprocessing go into the label file and manifest; default: the "
                        "deterministic seeded init (seed 0)")
    parser.add_argument("--out", type=Path, default=Path("artifacts"), help="output directory (default: artifacts)")
    parser.add_argument("--frames", type=int, help="clip length of the exported input (default: the variant's)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "int8", "palettize8"),
                        help="fp32; fp16 (coreml; openvino: fp16 weights); int8: calibrated int8 weights and "
                             "activations (onnx, executorch, openvino), int8 weights (coreml); palettize8: 8-bit "
                             "weight palettes (coreml). Default: the recipe's")
    parser.add_argument("--calibration", metavar="SOURCE",
                        help="int8 calibration clips: 'synthetic' (the procedural dataset), a folder of videos, a "
                             "folder of class folders, or a path,label CSV; required by --precision int8 on onnx, "
                             "executorch and openvino")
    parser.add_argument("--calibration-clips", type=int, metavar="N",
                        help="how many calibration clips (default: the recipe's [quantization] calibration_clips)")
    parser.add_argument("--recipe", type=Path, help="recipe file instead of export/<target>.toml "
                                                    "(one target at a time)")
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE", dest="overrides",
                        help="change one value of the recipe for this export, without copying the file (repeatable; "
                             "one target at a time; recorded in the manifest), e.g. --set "
                             "quantization.qat_steps=2048; VALUE is TOML, a bare word is a string")
    parser.add_argument("--no-fuse", action="store_true", help="apply only the rewrites a target requires")
    parser.add_argument("--force", action="store_true", help="overwrite existing artifacts")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="exports run at once, each in its own process (default: one per core, as many as the "
                             "free memory allows); 1 runs them one after another in this process")
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' own output (deprecation notices, runtime logs) on the console; "
                             "by default it goes to vmf-export.log in the output directory")
    return parser


def _human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _parity_cell(manifest: dict) -> str:
    parity = manifest["parity"]
    metrics = parity["metrics"]
    if metrics is None:
        return parity["status"]
    return (f"{parity['status']} (rel {metrics['max_rel_error']:.1e}, "
            f"top-1 {metrics['top1_agreement']:.0%}, {metrics['clips']} clips)")


def _delegation_cell(manifest: dict) -> str:
    d = manifest["export"]["delegation"]
    if not d:
        return "—"
    return f"{d['compute_ops_delegated_pct']:.0f}% compute, {d['portable_ops']} portable ops"


class _StepPrinter:
    """Prints a line per finished step (under a header per export) and the running steps in a spinner."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.status = console.status("")
        self.running: dict[tuple[str, str], str] = {}
        self.last: tuple[str, str] | None = None

    def __call__(self, cell: tuple[str, str], step: str, seconds: float | None) -> None:
        if seconds is None:
            self.running[cell] = step
        else:
            self.running.pop(cell, None)
            if cell != self.last:
                self.console.print(f"[bold]{cell[0]} → {cell[1]}[/bold]")
                self.last = cell
            self.console.print(f"  [green]✓[/green] {step:<10} {seconds:7.2f} s")
        self.status.update("; ".join(f"{v} → {t}: {s} …" for (v, t), s in self.running.items()))


def _summary(console: Console, rows: list[tuple[str, str, ExportResult | str]]) -> None:
    from rich.table import Table

    table = Table(title="vmf-export")
    for col in ("variant", "target", "artifact", "size", "parity", "delegation", "time"):
        table.add_column(col, justify="right" if col in ("size", "time") else "left")
    for variant, target, result in rows:
        if isinstance(result, str):
            table.add_row(variant, target, "[red]failed[/red]", "—", result, "—", "—")
            continue
        m = result.manifest
        table.add_row(variant, target, result.artifact.name, _human_size(m["artifact"]["size_bytes"]),
                      _parity_cell(m), _delegation_cell(m), f"{m['export']['export_seconds']:.1f} s")
    console.print(table)
    done = [r for _, _, r in rows if not isinstance(r, str)]
    if done:
        labels = ", ".join(sorted({r.manifest["labels"]["file"] for r in done}))
        console.print(f"artifacts, manifests and {labels} are in {done[0].artifact.parent}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vmf-export``: 0 when every requested export passed, 1 otherwise."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed by argparse
        return int(e.code or 0)
    from rich.console import Console

    from vmf_deploy.cli.common import output_folder_problem, resolve_variants
    from vmf_deploy.export.targets import resolve_targets
    from vmf_deploy.models import ConfigError

    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def error(message: str) -> int:
        err.print(f"{PROG}: error: {message}", markup=False)
        return 1

    try:
        variants = resolve_variants([args.variant])
    except ConfigError as e:
        return error(str(e))
    targets = [t.name for t in resolve_targets(args.target)]
    if args.checkpoint is not None and len(variants) > 1:
        return error("--checkpoint holds one variant: pass --variant NAME with it, not 'all'")
    if args.recipe is not None and len(targets) > 1:
        return error("--recipe is the recipe of one target: pass --target NAME with it, not 'all'")
    if args.overrides and len(targets) > 1:
        return error("--set changes the recipe of one target: pass --target NAME with it, not 'all'")
    from vmf_deploy.export.errors import ExportError
    from vmf_deploy.export.recipe_overrides import parse_override

    try:
        for text in args.overrides:
            parse_override(text)
    except ExportError as e:
        return error(str(e))
    counts = (("--jobs", args.jobs), ("--frames", args.frames), ("--calibration-clips", args.calibration_clips))
    for name, value in counts:
        if value is not None and value < 1:
            return error(f"{name} must be a positive integer, got {value}")
    problem = output_folder_problem("--out", args.out)
    if problem:
        return error(problem)
    if args.checkpoint is not None:  # one message, not the same failure once per target after its header
        from vmf_deploy.checkpoint import CheckpointError, read_checkpoint_metadata

        try:
            saved = read_checkpoint_metadata(args.checkpoint)["variant"]
        except CheckpointError as e:
            return error(str(e))
        if saved != variants[0]:
            return error(f"checkpoint {args.checkpoint} holds variant {saved!r}, not {variants[0]!r}: "
                         f"pass --variant {saved} (or a checkpoint of {variants[0]!r})")
    if args.verbose:
        return _run(args, variants, targets, sys.stdout, sys.stderr)
    from vmf_deploy.cli.quiet import count_lines, temp_log_path, third_party_output_to

    log = temp_log_path("vmf-export")  # moved into the output directory at the end
    with third_party_output_to(log) as (out, err_stream):
        code = _run(args, variants, targets, out, err_stream)
    kept = _keep_log(log, args.out)
    if kept is not None:
        Console(highlight=False, soft_wrap=True).print(
            f"the libraries' own output ({count_lines(kept)} lines) is in {kept}; --verbose shows it here",
            markup=False)
    return code


def _keep_log(log: Path, out_dir: Path) -> Path | None:
    """Move the log into the output directory when it exists; else keep it where it is. None when it is empty."""
    from vmf_deploy.cli.quiet import count_lines

    if not count_lines(log):
        log.unlink(missing_ok=True)
        return None
    if out_dir.is_dir():
        import shutil

        try:
            return Path(shutil.move(str(log), out_dir / LOG_NAME))
        except OSError:
            return log
    return log


def _run(args: argparse.Namespace, variants: list[str], targets: list[str], out_stream: TextIO,
         err_stream: TextIO) -> int:
    """Run the exports, print their steps and the summary; the streams are the console's."""
    from rich.console import Console

    from vmf_deploy.export.parallel import default_jobs, run_exports

    console = Console(file=out_stream, highlight=False, width=None if out_stream.isatty() else 140)
    err = Console(file=err_stream, stderr=True, highlight=False, soft_wrap=True)
    if args.checkpoint is None:
        console.print("note: no --checkpoint given: exporting the deterministic seeded init (seed 0), "
                      "whose predictions are meaningless; the manifest records source kind 'seeded-init'.")
    cells = [(variant, target) for variant in variants for target in targets]
    jobs = args.jobs or default_jobs(len(cells))
    if jobs > 1 and len(cells) > 1:
        console.print(f"running {min(jobs, len(cells))} exports at once, each in its own process (--jobs)")
    options = {"out_dir": args.out, "checkpoint": args.checkpoint, "frames": args.frames,
               "precision": args.precision, "recipe_path": args.recipe, "fuse": not args.no_fuse,
               "force": args.force, "calibration": args.calibration, "calibration_clips": args.calibration_clips,
               "recipe_overrides": tuple(args.overrides)}
    printer = _StepPrinter(console)
    started = time.perf_counter()
    printer.status.start()
    try:
        outcomes = run_exports(cells, options, jobs, on_step=printer)
    finally:
        printer.status.stop()
    rows: list[tuple[str, str, ExportResult | str]] = []
    for outcome in outcomes:
        if outcome.error is not None:
            err.print(f"{PROG}: error: {outcome.error}", markup=False)
        rows.append((*outcome.cell, outcome.result if outcome.result is not None else "failed"))
    _summary(console, rows)
    failed = sum(isinstance(r, str) for _, _, r in rows)
    console.print(f"{len(rows) - failed} of {len(rows)} export(s) passed in {time.perf_counter() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
