"""``python -m vmf_deploy.numerics ARTIFACT [OTHER]``: where, block by block, an artifact leaves PyTorch fp32.

Every side runs the same clip (a labelled clip of the synthetic dataset's gate split at the
artifact's input shape, or ``--noise``): PyTorch fp32 (the model the manifest names), ARTIFACT
and optionally OTHER. The output of the stem, of every block and the logits are compared:
SQNR against PyTorch for each artifact, and between the two artifacts. ``.onnx`` (fp32, int8) and
OpenVINO ``.xml`` (fp32, fp16, int8) artifacts are tapped as they are (:mod:`.onnx_taps`,
:mod:`.openvino_taps`); ``.pte`` ones (fp32, int8) are rebuilt with their block outputs as program
outputs (:mod:`.executorch_taps`: a minute or more; a fine-tuned one repeats its fine-tuning).

    python -m vmf_deploy.numerics artifacts/560m-16f-int8.onnx
    python -m vmf_deploy.numerics artifacts/560m-16f-int8.pte artifacts/560m-16f-int8.onnx --json diff.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

PROG = "python -m vmf_deploy.numerics"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (stdlib only)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("artifact", type=Path,
                        help="an .onnx, .pte or .xml written by vmf-export (manifest beside it)")
    parser.add_argument("other", type=Path, nargs="?", help="a second artifact of the same model to align with it")
    parser.add_argument("--noise", action="store_true", help="a smooth-noise clip instead of a synthetic action clip")
    parser.add_argument("--seed", type=int, default=0, help="which clip (default 0)")
    parser.add_argument("--json", type=Path, help="write the per-block report here")
    parser.add_argument("--verbose", action="store_true",
                        help="show what the libraries print (by default it goes to a temp log file)")
    return parser


TAPPED_SUFFIXES = (".onnx", ".pte", ".xml")


def _checked_manifest(artifact: Path) -> dict:
    """The artifact's manifest, after checking that it is a format tapped here and the artifact its manifest
    describes (sha256)."""
    from ..manifest import manifest_path, read_manifest, verify_artifact

    if artifact.suffix not in TAPPED_SUFFIXES:
        raise ValueError(f"{artifact}: only .onnx, .pte and .xml (OpenVINO) artifacts can be tapped here (Core ML "
                         "runs only on macOS)")
    manifest = read_manifest(manifest_path(artifact))
    verify_artifact(artifact, manifest)
    return manifest


def _model_identity(manifest: dict) -> dict:
    """What makes two artifacts exports of one model: variant, weights and input shape."""
    source = manifest["model"]["source"]
    weights = source.get("checkpoint_sha256") or f"seeded init, seed {source.get('seed')}"
    return {"variant": manifest["model"]["variant"], "weights": weights, "input": manifest["input"]["shape"]}


def _check_same_model(first: dict, second: dict, other: Path) -> None:
    """Refuse a second artifact of another model: its blocks would be compared with the wrong reference."""
    a, b = _model_identity(first), _model_identity(second)
    differ = [f"{key} {a[key]} vs {b[key]}" for key in a if a[key] != b[key]]
    if differ:
        raise ValueError(f"{other} is not an export of the same model ({'; '.join(differ)}): align artifacts of "
                         "one model, or diff each against PyTorch on its own")


def _side(path: Path, manifest: dict, model, clip, reference: dict,  # noqa: ANN001
          work_dir: Path) -> tuple[dict, dict]:
    """Block outputs of one artifact (one of :data:`TAPPED_SUFFIXES`) and how they were found."""
    if path.suffix == ".onnx":
        from .onnx_taps import onnx_block_outputs

        outputs, tensors = onnx_block_outputs(path, clip, reference)
        return outputs, {"tensors": tensors, "precision": manifest["artifact"]["precision"]}
    if path.suffix == ".xml":
        from .openvino_taps import openvino_block_outputs

        outputs, tensors = openvino_block_outputs(path, clip, reference)
        return outputs, {"tensors": tensors, "precision": manifest["artifact"]["precision"]}
    from ..parity import compare_logits
    from ..runners import get_runner
    from .executorch_taps import executorch_block_outputs, rebuild_tapped

    tapped, names = rebuild_tapped(manifest, model, work_dir)
    outputs = executorch_block_outputs(tapped, names, clip, reference)
    runner = get_runner("executorch-xnnpack")
    runner.load(path)
    own = runner.run(clip)
    runner.close()
    same = compare_logits([own], [outputs["logits"]]).sqnr_db
    return outputs, {"rebuilt": str(tapped), "tapped_logits_db": same,
                     "precision": manifest["artifact"]["precision"]}


def compare(artifact: Path, other: Path | None, noise: bool = False, seed: int = 0,
            work_dir: Path | None = None) -> dict:
    """The per-block report (see the module docstring) as a dict."""
    import numpy as np

    from ..export.pipeline import load_model
    from ..parity import parity_clips, snr_db
    from .taps import torch_block_outputs

    manifest = _checked_manifest(artifact)
    other_manifest = None if other is None else _checked_manifest(other)
    if other_manifest is not None:
        _check_same_model(manifest, other_manifest, other)
    source = manifest["model"]["source"]
    shape = tuple(manifest["input"]["shape"])
    model = load_model(manifest["model"]["variant"], source.get("checkpoint"), shape[2]).eval()
    if noise:
        clip = parity_clips(shape, [seed])[0]
    else:
        from ..datasets.synthetic import gate_clips

        clip = gate_clips(shape, seed + 1)[seed]
    reference = torch_block_outputs(model, clip)

    def sqnr(ref, cand) -> float | None:  # noqa: ANN001
        if cand is None:
            return None
        ref64 = ref.astype(np.float64)
        return snr_db(float(np.sum(ref64 ** 2)), float(np.sum((cand.astype(np.float64) - ref64) ** 2)))

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        sides = [(artifact, *_side(artifact, manifest, model, clip, reference, Path(tmp)))]
        if other is not None:
            sides.append((other, *_side(other, other_manifest, model, clip, reference, Path(tmp))))
    rows = []
    for block, ref in reference.items():
        row = {"block": block, "shape": list(ref.shape)}
        for i, (_, outputs, _) in enumerate(sides):
            row[f"sqnr_db_{i}"] = sqnr(ref, outputs.get(block))
        if len(sides) == 2:
            a, b = sides[0][1].get(block), sides[1][1].get(block)
            row["sqnr_db_between"] = None if a is None or b is None else sqnr(a, b)
        rows.append(row)
    return {"clip": {"kind": "noise" if noise else "synthetic gate split", "seed": seed, "shape": list(shape)},
            "reference": f"PyTorch fp32, {source.get('checkpoint') or 'seeded init'}",
            "artifacts": [{"path": str(p), **info} for p, _, info in sides], "blocks": rows}


def print_report(report: dict) -> None:
    """The report as a rich table."""
    from rich.console import Console
    from rich.table import Table

    sides = report["artifacts"]
    table = Table(title=f"block-by-block SQNR (dB) against {report['reference']}; clip: {report['clip']['kind']}")
    table.add_column("block")
    table.add_column("shape")
    for i, side in enumerate(sides):
        table.add_column(f"{Path(side['path']).name} ({side['precision']})", justify="right")
    if len(sides) == 2:
        table.add_column("between the two", justify="right")

    def cell(v: float | None) -> str:
        return "—" if v is None else f"{v:.1f}"

    for row in report["blocks"]:
        cells = [row["block"], "×".join(map(str, row["shape"]))]
        cells += [cell(row[f"sqnr_db_{i}"]) for i in range(len(sides))]
        if len(sides) == 2:
            cells.append(cell(row["sqnr_db_between"]))
        table.add_row(*cells)
    console = Console(width=None if sys.stdout.isatty() else 160)  # a pipe's 80 columns cut the artifacts' names
    console.print(table)
    for side in sides:
        if "tapped_logits_db" in side:
            console.print(f"{Path(side['path']).name}: rebuilt with block outputs; its logits vs the artifact's own: "
                          f"{side['tapped_logits_db']:.1f} dB")


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 on success, 1 with a one-line error otherwise."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be 0 or more, got {args.seed}")
    from ..cli.common import output_file_problem

    problem = output_file_problem("--json", args.json, "diff.json") if args.json else None
    if problem:
        parser.error(problem)
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation notices
    logging.getLogger("torchao").setLevel(logging.ERROR)  # import-time notices about unused CUDA kernels
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    from ..cli.quiet import libraries_quiet
    from ..export.errors import ExportError
    from ..manifest import ManifestError, write_json_atomic

    try:
        with libraries_quiet("vmf-numerics", args.verbose):
            report = compare(args.artifact, args.other, args.noise, args.seed)
    except (ManifestError, ExportError, ValueError, FileNotFoundError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    print_report(report)
    if args.json:
        write_json_atomic(args.json, report)
    return 0
