"""What int8 weight-only linears cost by themselves, and what they move in a whole int8 program.

    .venv/bin/python benchmarks/int8_weight_only_error.py --checkpoint run/last.safetensors
    .venv/bin/python benchmarks/int8_weight_only_error.py --checkpoint run/last.safetensors \\
        --artifacts fp32_kept=a/560m-16f-int8.pte weight_only=b/560m-16f-int8.pte

1. **In PyTorch.** The checkpoint's model runs the int8 gate's clips (3 noise + 240 labelled clips of the synthetic
   dataset's gate split) in fp32, then again with one group of linear weights rounded to int8 per output channel
   (symmetric, as the executorch and onnx recipes store them): the frame- and token-level DyReLUs' coefficient MLPs,
   then the classifier. Everything else stays fp32, so each row is that rounding's own error.
2. **In the runtime** (``--artifacts``). Two int8 artifacts of the same checkpoint run the same clips: each against
   PyTorch fp32, and the second against the first. Two programs that differ only in those weights show how far a
   small change upstream moves the rounding of every int8 activation after it.

Each row is the gate's own comparison (``vmf_deploy.parity.compare_logits``): the centered SQNR of the logits, top-1
agreement and the top-1 accuracy on the labelled clips among them. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from int8 import BACKENDS, REPO

if TYPE_CHECKING:
    import torch


def per_channel_int8(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` rounded to symmetric int8 per output channel (row), as floats."""
    import torch

    scale = weight.abs().amax(1, keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny) / 127
    return torch.round(weight / scale).clamp(-127, 127) * scale


def group_linears(model: torch.nn.Module) -> dict[str, list[torch.nn.Linear]]:
    """The model's ``nn.Linear`` modules by group: the DyReLUs' coefficient MLPs (``dyrelu_mlps``), the ``classifier``."""
    import torch

    from vmf_deploy.models.layers import FrameDyReLU, TokenDyReLU

    dyrelus = [name for name, m in model.named_modules() if isinstance(m, (FrameDyReLU, TokenDyReLU))]
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    return {"dyrelu_mlps": [m for name, m in linears if any(name.startswith(d + ".") for d in dyrelus)],
            "classifier": [linears[-1][1]]}


def main(argv: list[str] | None = None) -> int:
    """Run both comparisons, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a trained checkpoint of the synthetic classes")
    parser.add_argument("--artifacts", nargs=2, metavar="NAME=FILE", help="two int8 artifacts of that checkpoint")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "int8_weight_only_error.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.checkpoint import checkpoint_classes, load_checkpoint, read_checkpoint_metadata
    from vmf_deploy.export.parity_gate import GateClips, reference_logits, run_artifact, synthetic_labels
    from vmf_deploy.export.recipes import load_recipe
    from vmf_deploy.export.targets import get_target
    from vmf_deploy.parity import compare_logits

    artifacts = {}
    for item in args.artifacts or []:
        name, sep, file = item.partition("=")
        if not sep or not Path(file).is_file():
            parser.error(f"{item!r}: give NAME=FILE, an exported int8 artifact")
        artifacts[name] = Path(file)
    if artifacts:
        shapes = {tuple(json.loads(Path(f"{p}.manifest.json").read_text())["input"]["shape"]) for p in artifacts.values()}
        if len(shapes) != 1:
            parser.error(f"the artifacts take different inputs {sorted(shapes)}")
        shape = shapes.pop()
    else:
        preprocessing = read_checkpoint_metadata(args.checkpoint)["preprocessing"]
        shape = (1, 3, preprocessing["frames"], preprocessing["crop"], preprocessing["crop"])
    recipe = load_recipe(get_target("executorch"))
    clips = GateClips(shape, recipe.seeds, recipe.heldout_clips)
    labels = synthetic_labels(checkpoint_classes(args.checkpoint), recipe.heldout_clips)
    if labels is None:
        parser.error(f"{args.checkpoint} was not trained on the synthetic dataset's classes: its gate clips have no labels")
    labels = [None] * len(recipe.seeds) + labels
    model = load_checkpoint(args.checkpoint).eval()

    def compared(name: str, candidate: list, reference: list) -> dict:
        report = compare_logits(reference, candidate, labels)
        return {"compared": name, "centered_sqnr_db": report.centered_sqnr_db, "top1_agreement": report.top1_agreement,
                "accuracy_reference": report.reference_accuracy, "accuracy": report.accuracy,
                "max_abs_error": report.max_abs_error}

    reference = reference_logits(model, clips)
    rows = []
    for group, linears in group_linears(model).items():
        saved = [m.weight.data for m in linears]
        for m in linears:
            m.weight.data = per_channel_int8(m.weight.data)
        rows.append({**compared(f"PyTorch, {group} weights int8", reference_logits(model, clips), reference),
                     "linears": len(linears), "weights": sum(w.numel() for w in saved)})
        for m, weight in zip(linears, saved):
            m.weight.data = weight
    outputs = {}
    for name, path in artifacts.items():
        manifest = json.loads(Path(f"{path}.manifest.json").read_text())
        outputs[name] = run_artifact(BACKENDS[manifest["artifact"]["target"]], path, clips)
        rows.append(compared(f"{name} against PyTorch fp32", outputs[name], reference))
    if len(outputs) == 2:
        (first, a), (second, b) = outputs.items()
        rows.append(compared(f"{second} against {first}", b, a))

    device = host_device_info()
    print(f"{args.checkpoint}, {len(clips)} gate clips of {list(shape)}, {describe(device)}")
    print(f"{'compared':<44}{'SQNR dB':>9}{'agree':>8}{'accuracy':>18}")
    for row in rows:
        accuracy = f"{100 * row['accuracy_reference']:.1f} -> {100 * row['accuracy']:.1f}%"
        print(f"{row['compared']:<44}{row['centered_sqnr_db']:9.1f}{100 * row['top1_agreement']:7.1f}%{accuracy:>18}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
        "checkpoint": str(args.checkpoint), "input_shape": list(shape), "clips": len(clips),
        "artifacts": {name: str(path) for name, path in artifacts.items()}, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
