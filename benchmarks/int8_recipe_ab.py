"""Two values of one int8 ``[quantization]`` recipe key, side by side: size, latency in turns, and the int8 gate.

    .venv/bin/python benchmarks/int8_recipe_ab.py --variants 560m 1g 2g 5g --frames 64        # onnx banded_depthwise
    .venv/bin/python benchmarks/int8_recipe_ab.py --variants 560m --checkpoint run/last.safetensors   # + the int8 gate
    .venv/bin/python benchmarks/int8_recipe_ab.py --target openvino --key fp32_module_weights --values int8 fp32 \
        --variants 560m 5g --frames 64 --out benchmarks/results/int8_openvino_weights.json
    .venv/bin/python benchmarks/int8_recipe_ab.py --target executorch --key qat_steps --values 0 2048 \
        --variants 560m --checkpoint run/last.safetensors --recipe my-executorch.toml     # from another recipe
    .venv/bin/python benchmarks/int8_recipe_ab.py --target executorch --key qat_steps --values 0 2048 \
        --variants 560m --checkpoint run/last.safetensors --set quantization.kept_linears=weight_only_int8

For each variant the model is exported through ``vmf-export``'s pipeline: fp32, then
``--precision int8 --calibration synthetic`` once per value of ``--key`` (default: the onnx recipe's
``banded_depthwise``, false = native depthwise ``Conv3d`` run as ``QLinearConv``, true =
``onnx_depthwise_conv2d``'s banded 2D form, whose weights the int8 file stores T/kt times larger).
Without ``--checkpoint`` the int8 exports use a copy of the recipe whose int8 limits accept anything
(the seeded init's logits barely move between clips), and their gate metrics are printed but mean
nothing. With it, an int8 export the gate refuses is a row of its own, with the gate's reason, and each row
keeps fp32's and int8's top-1 accuracy on the gate's clips and the manifest's fine-tuning record (``qat_steps``). The
artifacts are loaded in the target's runtime (2 threads) and timed in turns on one clip (``int8.py``'s
``interleaved_ms``), medians. Writes ``benchmarks/results/int8_depthwise.json`` (or ``--out``)
after every variant, with ``"complete": false`` until the last one is in (a 64-frame run over every variant can be
killed for memory), then prints the table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from int8 import BACKENDS, REPO, interleaved_ms

RESULTS = REPO / "benchmarks" / "results" / "int8_depthwise.json"
ROW_NAMES = {("onnx", "banded_depthwise", "false"): "int8 native Conv3d",
             ("onnx", "banded_depthwise", "true"): "int8 banded 2D"}
"""Row names of the values measured before this script took ``--key`` (others read ``int8 KEY=VALUE``)."""


def value_overrides(key: str, value: str, overrides: list[str]) -> tuple[str, ...]:
    """The ``--set`` overrides of one int8 export: every export's, then ``quantization.KEY=VALUE`` (last, so it
    wins)."""
    return (*overrides, f"quantization.{key}={value}")


def recipe_for(target: str, latency_only: bool, folder: Path, source: Path | None) -> Path | None:
    """The recipe file the int8 exports start from: ``source`` (``None``: the target's own), or, with
    ``latency_only``, a copy of the target's recipe that accepts any int8 parity, written in ``folder``."""
    from vmf_deploy.export.recipes import accept_any_parity
    from vmf_deploy.export.targets import get_target

    return accept_any_parity(get_target(target), "int8", folder) if latency_only else source


def gate_columns(metrics: dict) -> dict:
    """The gate's metrics a row keeps: the clips it ran, the four parity figures, plus PyTorch fp32's and the
    artifact's top-1 accuracy on the gate's labelled clips where the gate measured them (``None`` otherwise). The fp32
    gate runs a handful of clips, the int8 gate the held-out set: only an int8 row's accuracies mean something."""
    return {"clips": metrics["clips"], "centered_sqnr_db": metrics["centered_sqnr_db"],
            "top1_agreement": metrics["top1_agreement"],
            "min_cosine": metrics["min_cosine"], "max_rel_error": metrics["max_rel_error"],
            "reference_accuracy": metrics.get("reference_accuracy"), "accuracy": metrics.get("accuracy")}


def write_results(args: argparse.Namespace, rows: list[dict], final: bool) -> None:
    """Write the rows so far to ``args.out`` (after every variant: a 64-frame run killed for memory keeps what
    it measured), and print the table once the last variant is in."""
    from vmf_deploy.bench.machine import describe, host_device_info

    machine = describe(host_device_info())
    source = str(args.checkpoint) if args.checkpoint else "seeded init"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                    "tool": "benchmarks/int8_recipe_ab.py", "command": " ".join(sys.argv),
                                    "target": args.target, "key": args.key, "values": args.values,
                                    "recipe": str(args.recipe or "default"), "overrides": args.overrides,
                                    "machine": machine, "source": source, "threads": args.threads,
                                    "rounds": args.rounds, "block": args.block,
                                    "load_average": os.getloadavg(), "complete": final, "rows": rows},
                                   indent=2) + "\n")
    print(f"{rows[-1]['variant']}: exported and timed, wrote {args.out}", flush=True)
    if not final:
        return
    edits = "".join(f" --set {text}" for text in args.overrides)
    print(f"\nint8 {args.target} [quantization] {args.key} = {' / '.join(args.values)}{edits} on {BACKENDS[args.target]}, "
          f"{source}; {machine}; {args.threads} threads, "
          f"{args.rounds} rounds of {args.block} runs in turns; load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<8}{'form':<32}{'MB':>7}{'÷ size':>8}{'ms':>8}{'÷ fp32':>8}{'SQNR':>7}{'agree':>8}"
          f"{'worst cos':>10}  fp32 → int8 top-1 on the gate's clips")
    for r in rows:
        if "ms" not in r:
            print(f"{r['variant']:<8}{r['form']:<32}{r['gate']}")
            continue
        print(f"{r['variant']:<8}{r['form']:<32}{r['bytes'] / 1e6:7.2f}{r['smaller']:7.2f}x{r['ms']:8.1f}"
              f"{r['over_fp32']:8.2f}{r['centered_sqnr_db']:7.1f}{r['top1_agreement']:8.1%}{r['min_cosine']:10.3f}"
              + (f"  {r['reference_accuracy']:.1%} → {r['accuracy']:.1%}"
                 if r["form"] != "fp32" and r.get("accuracy") is not None else ""))


def main(argv: list[str] | None = None) -> int:
    """Export each variant at fp32 and at both values, time them against fp32, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=list(BACKENDS), default="onnx")
    parser.add_argument("--key", default="banded_depthwise", help="a [quantization] key of the target's recipe")
    parser.add_argument("--values", nargs=2, default=["false", "true"], help="the two values, as TOML literals")
    parser.add_argument("--variants", nargs="+", default=["560m", "1g", "2g", "5g"])
    parser.add_argument("--frames", type=int, help="clip length (default: the checkpoint's / variant's)")
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint of the (single) variant: the int8 "
                        "gate is judged for real")
    parser.add_argument("--recipe", type=Path, help="the recipe the values are written into (default: the "
                        "target's); needs --checkpoint")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="TABLE.KEY=VALUE",
                        help="a recipe value every int8 export uses, as vmf-export --set (repeatable); needs "
                             "--checkpoint")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of turns (default 8)")
    parser.add_argument("--block", type=int, default=5, help="timed runs per artifact per round (default 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.checkpoint and len(args.variants) != 1:
        parser.error("--checkpoint belongs to one variant: give one --variants")
    if (args.recipe or args.overrides) and not args.checkpoint:
        parser.error("--recipe and --set need --checkpoint: without one, the int8 exports use the target's recipe "
                     "with limits that accept anything")
    sys.path.insert(0, str(REPO))
    from vmf_deploy.export.errors import ExportError
    from vmf_deploy.export.recipe_overrides import parse_override
    from vmf_deploy.export.recipes import load_recipe
    from vmf_deploy.export.targets import get_target

    try:
        for text in args.overrides:
            parse_override(text)
        for value in args.values:  # an unknown key or a value of the wrong type, before anything is exported
            load_recipe(get_target(args.target), args.recipe, value_overrides(args.key, value, args.overrides))
    except ExportError as e:
        parser.error(str(e))

    import numpy as np

    from vmf_deploy.export.pipeline import export_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for variant in args.variants:
            results = {"fp32": export_model(variant, args.target, work / variant / "fp32",
                                            checkpoint=args.checkpoint, frames=args.frames)}
            for index, value in enumerate(args.values):
                name = ROW_NAMES.get((args.target, args.key, value), f"int8 {args.key}={value}")
                folder = work / variant / f"value-{index}"
                try:
                    results[name] = export_model(
                        variant, args.target, folder, checkpoint=args.checkpoint, frames=args.frames,
                        precision="int8", calibration="synthetic",
                        recipe_path=recipe_for(args.target, args.checkpoint is None, work / "recipes", args.recipe),
                        recipe_overrides=value_overrides(args.key, value, args.overrides))
                except ExportError as refused:  # a trained model's gate said no: a result, not a crash
                    rows.append({"variant": variant, "form": name, "gate": "refused: " + str(refused).split("\n")[0]})
            shape = results["fp32"].manifest["input"]["shape"]
            clip = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            ms = interleaved_ms({name: r.artifact for name, r in results.items()}, BACKENDS[args.target], clip,
                                args.rounds, args.block, args.threads)
            for name, result in results.items():
                gate = result.manifest["parity"]["metrics"]
                rows.append({"variant": variant, "form": name, "input_shape": shape, "ms": ms[name],
                             "over_fp32": ms[name] / ms["fp32"],
                             "bytes": result.manifest["artifact"]["size_bytes"],
                             "smaller": results["fp32"].manifest["artifact"]["size_bytes"]
                             / result.manifest["artifact"]["size_bytes"],
                             "rewrites": [r["name"] for r in result.manifest["export"]["rewrites"]],
                             **gate_columns(gate),
                             "fine_tuning": (result.manifest["export"].get("quantization") or {}).get("qat"),
                             "gate": "not judged (seeded init)" if args.checkpoint is None and name != "fp32"
                             else "passed"})
            del results
            gc.collect()
            write_results(args, rows, final=variant == args.variants[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
