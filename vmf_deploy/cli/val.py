"""``vmf-val``: top-1/top-5 accuracy of a checkpoint and of any exported artifacts on labelled videos.

Exit codes: 0 validated; 2 usage error (bad arguments, data, checkpoint or artifact).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .common import fail, output_file_problem

PROG = "vmf-val"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(
        prog=PROG, description="Accuracy of a trained checkpoint in PyTorch fp32 and of exported artifacts in their "
        "runtimes, on the same decoded clips, with each artifact's agreement with PyTorch (top-1 agreement, top-5 "
        "overlap, logit cosine, SQNR).")
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint written by vmf-train")
    p.add_argument("--artifact", action="append", default=[], metavar="PATH[@BACKEND]",
                   help="exported artifact (repeatable); @BACKEND picks the runner, e.g. model.pte@executorch-native")
    p.add_argument("--data", required=True, help="folder of class folders, CSV of path,label, or 'synthetic' "
                   "(its held-out test split)")
    p.add_argument("--clips", type=int, help="use the first N clips (synthetic: how many to render; default 240)")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON ('-' for stdout)")
    p.add_argument("--confusion", metavar="PNG", help="write confusion matrices (one panel per row) to PNG")
    p.add_argument("--per-class", action="store_true", help="print the per-class top-1 table")
    p.add_argument("--threads", type=int, help="intra-op threads of the artifact backends")
    p.add_argument("--seed", type=int, default=0, help="synthetic dataset seed (default 0)")
    p.add_argument("--verbose", action="store_true",
                   help="show what the libraries print (by default it goes to a temp log file)")
    return p


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, spec)


def print_report(report, per_class: bool, console) -> None:
    """The summary table (one row per model) and, optionally, the per-class table."""
    from rich.table import Table

    table = Table(title=f"{report.checkpoint} on {report.data.get('root') or report.data.get('kind')} "
                        f"({len(report.labels)} clips, {len(report.classes)} classes)")
    for col in ("model", "backend", "precision", "top-1", "top-5", "top-1 agree", "top-5 overlap", "cosine (min)",
                "SQNR dB", "centered SQNR dB"):
        table.add_column(col, justify="left" if col in ("model", "backend", "precision") else "right")
    for row in report.rows:
        s = report.summary(row)
        table.add_row(s["name"], s["backend"], s["precision"], _fmt(s["top1"], ".1%"), _fmt(s["top5"], ".1%"),
                      _fmt(s.get("top1_agreement"), ".1%"), _fmt(s.get("top5_overlap"), ".1%"),
                      _fmt(s.get("cosine_min"), ".6f"), _fmt(s.get("sqnr_db"), ".1f"),
                      _fmt(s.get("centered_sqnr_db"), ".1f"))
    console.print(table)
    for row in report.rows:
        for note in row.notes:
            console.print(f"note: {row.name}: {note}")
    if per_class:
        cls = Table(title="top-1 per class")
        cls.add_column("class")
        cls.add_column("clips", justify="right")
        for row in report.rows:
            cls.add_column(f"{row.name} ({row.backend})", justify="right")
        per = [report.per_class(row) for row in report.rows]
        for i, name in enumerate(report.classes):
            cls.add_row(name, str(int((report.labels == i).sum())), *[_fmt(p[name], ".1%") for p in per])
        console.print(cls)
    if report.skipped:
        console.print(f"{len(report.skipped)} unreadable videos were skipped:")
        for video, reason in report.skipped:
            console.print(f"  {video}: {reason}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vmf-val``."""
    args = build_parser().parse_args(argv)
    if args.clips is not None and args.clips < 1:
        fail(PROG, f"--clips must be at least 1, got {args.clips}")
    problems = [output_file_problem("--json", args.json, "report.json") if args.json not in (None, "-") else None,
                output_file_problem("--confusion", args.confusion, "confusion.png") if args.confusion else None]
    for problem in filter(None, problems):
        fail(PROG, problem)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..atomic import atomic_output
    from ..validate import ValidationError, parse_artifact, plot_confusion, validate
    from .quiet import libraries_quiet

    try:
        artifacts = [parse_artifact(a) for a in args.artifact]
    except ValidationError as e:
        fail(PROG, str(e))
    console = Console(stderr=args.json == "-", highlight=False, width=None if sys.stdout.isatty() else 160)
    with libraries_quiet(PROG, args.verbose) as (_, err), \
            Progress(TextColumn("[bold]val[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                     transient=True, console=Console(file=err), disable=not err.isatty()) as bar:
        task = bar.add_task("clips", total=None)
        try:
            report = validate(args.checkpoint, artifacts, args.data, args.clips, args.seed, args.threads,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
        except ValidationError as e:
            fail(PROG, str(e))
    print_report(report, args.per_class, console)
    if args.json:
        text = json.dumps(report.to_json(), indent=2)
        if args.json == "-":
            print(text)
        else:
            with atomic_output(Path(args.json)) as tmp:
                tmp.write_text(text + "\n")
    if args.confusion:
        plot_confusion(report, args.confusion)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
