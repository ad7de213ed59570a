"""``vmf-info``: parameters and FLOPs of each variant next to the paper's Table 1."""

from __future__ import annotations

import argparse
import json
import sys

from .common import fail, resolve_variants


def variant_info(name: str) -> dict:
    """Params, FLOPs and the paper's values of one registered variant at its default input."""
    from ..counting import count_flops, count_params
    from ..models import build_model

    model = build_model(name)
    cfg = model.cfg
    shape = list(cfg.input_shape)
    params, flops = count_params(model), count_flops(model, shape)

    def rel(ours: int, paper: float | None) -> float | None:
        return None if paper is None else (ours - paper) / paper

    return {
        "variant": name, "input_shape": shape, "params": params, "flops": flops,
        "paper_params": cfg.paper_params, "paper_flops": cfg.paper_flops,
        "params_rel_diff": rel(params, cfg.paper_params), "flops_rel_diff": rel(flops, cfg.paper_flops),
    }


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}%"


def print_table(rows: list[dict]) -> None:
    """Render ``rows`` as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Video Mobile-Former variants (FLOPs = multiply-adds per clip)")
    for col in ("variant", "input (B,C,T,H,W)", "params", "GFLOPs", "paper params", "paper GFLOPs",
                "Δ params", "Δ FLOPs"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for r in rows:
        table.add_row(
            r["variant"], "×".join(map(str, r["input_shape"])), f"{r['params'] / 1e6:.3f}M",
            f"{r['flops'] / 1e9:.3f}",
            "—" if r["paper_params"] is None else f"{r['paper_params'] / 1e6:.1f}M",
            "—" if r["paper_flops"] is None else f"{r['paper_flops'] / 1e9:.2f}",
            _pct(r["params_rel_diff"]), _pct(r["flops_rel_diff"]),
        )
    Console(width=None if sys.stdout.isatty() else 140).print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vmf-info``."""
    parser = argparse.ArgumentParser(prog="vmf-info", description=__doc__)
    parser.add_argument("--variant", nargs="+", default=["all"],
                        help="registry name(s) or 'all' (default: all)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    args = parser.parse_args(argv)
    from ..models import ConfigError  # imports torch: after --help

    try:
        names = resolve_variants(args.variant)
    except ConfigError as e:
        fail("vmf-info", str(e))
    rows = [variant_info(n) for n in names]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
