"""How far deliberately wrong ONNX artifacts fall from PyTorch on the parity gate's clips.

    .venv/bin/python benchmarks/gate_tamper.py                                    # the seeded init
    .venv/bin/python benchmarks/gate_tamper.py --checkpoint runs/reference-560m/last.safetensors

Exports 560m to ONNX at 16 frames (the seeded init, and ``--checkpoint`` if given), edits each
export with ``tests/tamper.py`` (channels reversed, time reversed, a frame dropped and another
duplicated, the Former tokens zeroed), runs every artifact in onnxruntime on the ONNX recipe's
gate clips and prints the gate's metrics next to the untampered artifact's: the margins the
recipes' limits (``export/*.toml``) leave on both sides. Writes ``benchmarks/results/gate_tamper.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "gate_tamper.json"


def main(argv: list[str] | None = None) -> int:
    """Export, tamper, gate, print, write."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a trained 560m checkpoint, measured beside the seeded init")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO / "tests"))
    import onnx
    from rich.console import Console
    from rich.table import Table
    from tamper import reversed_channels, reversed_time, shifted_frames, zeroed_tokens

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.parity_gate import gate_inputs, reference_logits, run_artifact
    from vmf_deploy.export.pipeline import export_model, load_model
    from vmf_deploy.export.recipes import load_recipe
    from vmf_deploy.export.targets import get_target
    from vmf_deploy.manifest import write_json_atomic
    from vmf_deploy.parity import compare_logits

    recipe = load_recipe(get_target("onnx"))
    edits = {"untampered": lambda proto, cfg: proto, "bgr": lambda proto, cfg: reversed_channels(proto),
             "time_reversed": lambda proto, cfg: reversed_time(proto),
             "frames_shifted": lambda proto, cfg: shifted_frames(proto),
             "tokens_zeroed": lambda proto, cfg: zeroed_tokens(proto, cfg["num_tokens"], cfg["token_dim"])}
    models = [("seeded init", None)] + ([(f"checkpoint {args.checkpoint.name}", args.checkpoint)]
                                        if args.checkpoint else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, checkpoint in models:
            result = export_model("560m", "onnx", Path(tmp) / label.replace(" ", "-"), checkpoint=checkpoint,
                                  frames=None if checkpoint else 16)
            manifest = result.manifest
            reference = load_model("560m", checkpoint, manifest["input"]["shape"][2]).eval()
            clips = gate_inputs(tuple(manifest["input"]["shape"]), recipe.seeds, recipe.synthetic_clips)
            expected = reference_logits(reference, clips)
            proto = onnx.load(str(result.artifact))
            for name, edit in edits.items():
                path = Path(tmp) / f"{label.replace(' ', '-')}-{name}.onnx"
                onnx.save(edit(proto, manifest["model"]["config"]), str(path))
                report = compare_logits(expected, run_artifact("onnxruntime-cpu", path, clips))
                rows.append({"model": label, "artifact": name, **report.to_dict()})

    table = Table(title=f"ONNX artifacts vs PyTorch fp32 on the gate's {rows[0]['clips']} clips (560m, 16 frames)")
    for col in ("model", "artifact", "centered SQNR dB", "spread rel", "max rel", "min cosine", "top-1"):
        table.add_column(col, justify="left" if col in ("model", "artifact") else "right")
    for r in rows:
        table.add_row(r["model"], r["artifact"], f"{r['centered_sqnr_db']:.1f}", f"{r['max_spread_rel_error']:.3g}",
                      f"{r['max_rel_error']:.3g}", f"{r['min_cosine']:.6f}", f"{r['top1_agreement']:.0%}")
    Console(width=160).print(table)
    write_json_atomic(args.out, {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                 "machine": describe(host_device_info()), "rows": rows})
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
