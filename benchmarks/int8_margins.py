"""Which clips int8 flips: top-1 flips against the fp32 model's margin (best logit − second best), per artifact.

    .venv/bin/python benchmarks/int8_margins.py --checkpoint runs/reference-560m/last.safetensors \\
        runs/int8-bench/560m-16f-int8.onnx runs/int8-bench/560m-16f-int8.pte runs/int8-bench/560m-16f-int8.xml

PyTorch fp32 and each int8 artifact (in its runtime, as the int8 gate runs it) read the gate's 240
labelled held-out clips of the synthetic dataset. The clips are sorted by the fp32 margin and cut
into five equal bins; per bin the table gives the margin range, the top-1 flips of each artifact
and the median of its per-clip logit error (max abs over the classes). A flip needs an error of
about half the margin or more, so an error level that is flat over the bins flips the low-margin
bins first. Prints the table and writes ``benchmarks/results/int8_margins.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "int8_margins.json"
BACKEND_BY_SUFFIX = {".onnx": "onnxruntime-cpu", ".pte": "executorch-xnnpack", ".xml": "openvino-cpu"}
BINS = 5


def main(argv: list[str] | None = None) -> int:
    """Run PyTorch and every artifact on the gate clips; print and write flips per margin bin."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifacts", nargs="+", type=Path, help=".onnx / .pte / .xml int8 artifacts of the checkpoint")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the trained checkpoint they were exported from")
    parser.add_argument("--clips", type=int, default=240, help="gate clips (default 240, the int8 gate's)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    import numpy as np
    import torch

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.checkpoint import load_checkpoint
    from vmf_deploy.datasets.synthetic import gate_clips
    from vmf_deploy.export.parity_gate import run_artifact

    for artifact in args.artifacts:
        if artifact.suffix not in BACKEND_BY_SUFFIX:
            parser.error(f"{artifact}: not an .onnx, .pte or .xml artifact")
    model = load_checkpoint(args.checkpoint).eval()
    shape = tuple(json.loads(Path(f"{args.artifacts[0]}.manifest.json").read_text())["input"]["shape"])
    clips = gate_clips(shape, args.clips)
    with torch.inference_mode():
        reference = np.stack([model(torch.from_numpy(c)).numpy()[0] for c in clips])
    top2 = np.sort(reference, axis=1)[:, -2:]
    margins = top2[:, 1] - top2[:, 0]
    order = np.argsort(margins)
    bins = np.array_split(order, BINS)
    results = {}
    for artifact in args.artifacts:
        logits = np.stack([np.asarray(x).reshape(-1) for x in run_artifact(BACKEND_BY_SUFFIX[artifact.suffix],
                                                                             artifact, clips)])
        flipped = logits.argmax(1) != reference.argmax(1)
        error = np.abs(logits - reference).max(1)
        results[artifact.name] = {"flips": int(flipped.sum()), "agreement": float(1 - flipped.mean()),
                                  "bins": [{"flips": int(flipped[b].sum()),
                                            "median_max_abs_error": float(np.median(error[b]))} for b in bins]}
    rows = [{"clips": len(b), "margin_min": float(margins[b].min()), "margin_max": float(margins[b].max())}
            for b in bins]
    machine = describe(host_device_info())
    print(f"int8 top-1 flips by fp32 margin; {args.checkpoint}, {args.clips} gate clips at {shape}; {machine}")
    names = list(results)
    print(f"{'fp32 margin':<16}{'clips':>6}" + "".join(f"{n[-24:]:>30}" for n in names))
    for i, row in enumerate(rows):
        cells = "".join(f"{results[n]['bins'][i]['flips']:>14} flips, err {results[n]['bins'][i]['median_max_abs_error']:5.2f}"
                        for n in names)
        print(f"{row['margin_min']:6.2f} – {row['margin_max']:6.2f}{row['clips']:>6}{cells}")
    print(f"{'all':<16}{args.clips:>6}" + "".join(f"{results[n]['flips']:>14} flips, {results[n]['agreement']:8.1%}"
                                                    for n in names))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                    "tool": "benchmarks/int8_margins.py", "command": " ".join(sys.argv),
                                    "machine": machine, "checkpoint": str(args.checkpoint), "clips": args.clips,
                                    "input_shape": shape, "bins": rows, "artifacts": results}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
