"""CoreML fp16 parity simulated in PyTorch: what the fp16 gate should accept, measured where Core ML cannot run.

    .venv/bin/python benchmarks/fp16_tolerance.py                            # seeded init of 560m, 16 frames
    .venv/bin/python benchmarks/fp16_tolerance.py --checkpoint 560m.safetensors --frames 16 64

The fp32 reference is the model in eager mode; the candidate is the same model with fp16
emulated the way ``vmf-export --target coreml --precision fp16`` converts it: the input,
every weight and buffer, and every computed value rounded to fp16 and back, except inside
the module classes the CoreML recipe's ``[coreml].fp32_modules`` lists (the bridges), which
keep fp32 weights and compute; their outputs are rounded on the way out (Core ML casts them
for the fp16 op that reads them). Two granularities of "every computed value":

- ``leaf``: the floating output of every leaf module (Conv3d, Linear, BatchNorm, LayerNorm, …)
  via forward hooks; functional ops inside a composite module (residual adds, the Former's
  attention, DyReLU's max) stay fp32 until the next leaf.
- ``op``: the output of every ATen op (a ``TorchDispatchMode``), as Core ML rounds every op.

Neither models fp16 accumulation inside a conv or matmul, so real Core ML can only be worse:
the derived tolerance is the worst measured value with a margin of ``--margin-db`` (10 dB:
10x the error energy, 3.2x the error amplitude). Clips: the CoreML recipe's gate clips
(noise clips of its seeds + ``synthetic_clips`` clips of the procedural action dataset).
Prints a table and writes ``benchmarks/results/fp16_tolerance.json``.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "fp16_tolerance.json"
MODES = ("leaf", "op")


def _round(value):  # noqa: ANN001, ANN202 - any module output (tensor, tuple, dict)
    """``value`` with every floating tensor rounded to fp16 and back to its dtype."""
    import torch
    from torch.utils._pytree import tree_map

    return tree_map(lambda t: t.to(torch.float16).to(t.dtype)
                    if isinstance(t, torch.Tensor) and t.is_floating_point() else t, value)


def _fp32_members(model, fp32_classes: list[str]) -> set[int]:  # noqa: ANN001 - nn.Module
    """``id`` of every module inside (or being) an instance of one of ``fp32_classes``."""
    return {id(sub) for m in model.modules() if type(m).__name__ in fp32_classes for sub in m.modules()}


def simulated_fp16(model, fp32_classes: list[str], mode: str) -> tuple[object, Callable[[], object]]:  # noqa: ANN001
    """A copy of ``model`` emulating fp16 at ``mode`` granularity, and a context factory to run it in.

    Weights and buffers of modules outside ``fp32_classes`` are rounded to fp16 once; hooks
    round the input, the outputs of the ``fp32_classes`` modules and (``leaf``) every other leaf
    module's output; ``op`` rounds every ATen op's output outside ``fp32_classes`` instead.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    sim = copy.deepcopy(model).eval()
    fp32 = _fp32_members(sim, fp32_classes)
    with torch.no_grad():
        for m in sim.modules():
            if id(m) not in fp32:
                for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]:
                    if t.is_floating_point():
                        t.copy_(t.to(torch.float16))
    state = {"fp32_depth": 0}

    def enter(_m, _args):  # noqa: ANN001, ANN202 - hook signature
        state["fp32_depth"] += 1

    def leave(_m, _args, out):  # noqa: ANN001, ANN202
        state["fp32_depth"] -= 1
        return _round(out)

    sim.register_forward_pre_hook(lambda _m, args: _round(args))
    for m in sim.modules():
        if type(m).__name__ in fp32_classes:
            m.register_forward_pre_hook(enter)
            m.register_forward_hook(leave)
        elif mode == "leaf" and id(m) not in fp32 and not list(m.children()):
            m.register_forward_hook(lambda _m, _args, out: _round(out))

    class RoundEveryOp(TorchDispatchMode):
        """Rounds the floating outputs of every ATen op run outside an fp32 module."""

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            out = func(*args, **(kwargs or {}))
            if state["fp32_depth"]:
                return out
            schema = func._schema
            if any(r.alias_info is not None for r in schema.returns):  # a view (of a rounded tensor) or in-place
                for spec, value in zip(schema.arguments, args):
                    if (spec.alias_info is not None and spec.alias_info.is_write and isinstance(value, torch.Tensor)
                            and value.is_floating_point()):
                        value.copy_(value.to(torch.float16))
                return out
            return _round(out)

    @contextmanager
    def context() -> Iterator[None]:
        with torch.inference_mode():
            if mode == "op":
                with RoundEveryOp():
                    yield
            else:
                yield

    return sim, context


def measure(label: str, model, clips: list, sources: list[dict], fp32_classes: list[str]) -> list[dict]:  # noqa: ANN001
    """One row per mode: gate metrics of the simulated fp16 model against fp32, pooled and per clip source."""
    import torch

    from vmf_deploy.export.parity_gate import reference_logits
    from vmf_deploy.parity import compare_logits

    reference = reference_logits(model, clips)
    rows = []
    for mode in MODES:
        sim, context = simulated_fp16(model, fp32_classes, mode)
        start = time.perf_counter()
        with context():
            candidate = [sim(torch.from_numpy(c)).numpy() for c in clips]
        row = {"model": label, "mode": mode, "seconds": time.perf_counter() - start,
               "gate": compare_logits(reference, candidate).to_dict(), "by_source": {}}
        first = 0
        for src in sources:
            part = slice(first, first + src["count"])
            row["by_source"][src["source"]] = compare_logits(reference[part], candidate[part]).to_dict()
            first += src["count"]
        rows.append(row)
    return rows


def derive(rows: list[dict], margin_db: float) -> dict:
    """The fp16 tolerance: every metric's worst value over ``rows`` with ``margin_db`` of headroom."""
    def up(x: float) -> float:  # round up to one significant digit
        exp = math.floor(math.log10(x))
        return math.ceil(x / 10 ** exp) * 10 ** exp

    amplitude = 10 ** (margin_db / 20)
    worst = {
        "centered_sqnr_db": min(r["gate"]["centered_sqnr_db"] for r in rows),
        "max_spread_rel_error": max(r["gate"]["max_spread_rel_error"] for r in rows),
        "max_rel_error": max(r["gate"]["max_rel_error"] for r in rows),
        "min_cosine": min(r["gate"]["min_cosine"] for r in rows),
        "top1_agreement": min(r["gate"]["top1_agreement"] for r in rows),
    }
    return {"worst": worst, "margin_db": margin_db, "tolerance": {
        "min_centered_sqnr_db": 5 * math.floor((worst["centered_sqnr_db"] - margin_db) / 5),
        "max_spread_rel_error": up(worst["max_spread_rel_error"] * amplitude),
        "max_rel_error": up(worst["max_rel_error"] * amplitude),
        "min_cosine": 1 - up((1 - worst["min_cosine"]) * amplitude ** 2),
        "min_top1_agreement": worst["top1_agreement"]}}


def main(argv: list[str] | None = None) -> int:
    """Measure the seeded init (and ``--checkpoint``) at each ``--frames``, print, store, derive."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="560m", help="variant of the seeded init (default 560m)")
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint (load_checkpoint) measured too")
    parser.add_argument("--frames", type=int, nargs="+", default=[16])
    parser.add_argument("--margin-db", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch
    from rich.console import Console
    from rich.table import Table

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.parity_gate import clip_sources, gate_inputs
    from vmf_deploy.export.pipeline import load_model
    from vmf_deploy.export.recipes import load_recipe
    from vmf_deploy.export.targets import get_target
    from vmf_deploy.manifest import write_json_atomic

    torch.set_num_threads(2)
    recipe = load_recipe(get_target("coreml"))
    fp32_classes = list(recipe.options["fp32_modules"])
    models = [(f"{args.variant} seeded init", args.variant, None)]
    if args.checkpoint:
        models.append((f"checkpoint {args.checkpoint.name}", None, args.checkpoint))
    rows = []
    for frames in args.frames:
        for label, variant, checkpoint in models:
            model = load_model(variant, checkpoint, frames).eval()
            shape = tuple(model.cfg.input_shape)
            clips = gate_inputs(shape, recipe.seeds, recipe.synthetic_clips)
            for row in measure(label, model, clips, clip_sources(recipe.seeds, recipe.synthetic_clips),
                               fp32_classes):
                rows.append({**row, "frames": frames, "input_shape": list(shape)})

    table = Table(title=f"simulated CoreML fp16 vs PyTorch fp32 (fp32 kept in {', '.join(fp32_classes)}), "
                        f"{rows[0]['gate']['clips']} gate clips")
    for col in ("model", "frames", "mode", "centered SQNR dB", "noise / synthetic dB", "spread rel",
                "max rel", "min cosine", "top-1", "SQNR dB"):
        table.add_column(col, justify="left" if col in ("model", "mode") else "right")
    for r in rows:
        g, per = r["gate"], list(r["by_source"].values())
        table.add_row(r["model"], str(r["frames"]), r["mode"], f"{g['centered_sqnr_db']:.1f}",
                      " / ".join(f"{p['centered_sqnr_db']:.1f}" for p in per), f"{g['max_spread_rel_error']:.3g}",
                      f"{g['max_rel_error']:.3g}", f"{g['min_cosine']:.6f}", f"{g['top1_agreement']:.0%}",
                      f"{g['sqnr_db']:.1f}")
    Console(width=160).print(table)
    derived = derive(rows, args.margin_db)
    print(f"derived [parity.tolerance.fp16] (worst of {len(rows)} rows, {args.margin_db:g} dB margin): "
          + ", ".join(f"{k} = {v:.6g}" for k, v in derived["tolerance"].items()))
    doc = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": describe(host_device_info()), "torch": torch.__version__, "fp32_modules": fp32_classes,
           "clip_sources": clip_sources(recipe.seeds, recipe.synthetic_clips), "rows": rows, "derived": derived}
    write_json_atomic(args.out, doc)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
