"""Latency vs GFLOPs per backend (the paper's Figure 1 / Table 12 view), peers marked, as a PNG."""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import atomic_output

FIGSIZE = (10.0, 6.0)  # inches
DPI = 100  # → 1000 × 600 pixels
MARKERS = "osD^v<>ph"


def plot_results(results: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Write a log-log scatter of median latency per clip vs GFLOPs of every ``ok`` result.

    One colour per backend; VMF variants are joined by a line per backend; peers (X3D) are
    stars, labelled. Written through a temp file (never a half-written PNG). Returns the path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if r["status"] == "ok" and r["flops"] and r["latency_ms"]]  # emulated rows: no time
    if not ok:
        raise ValueError("nothing to plot: no backend produced a measurement (every row skipped or failed)")
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    backends = list(dict.fromkeys(r["backend"] for r in ok))
    for i, backend in enumerate(backends):
        colour = f"C{i % 10}"
        rows = [r for r in ok if r["backend"] == backend]
        own = sorted((r for r in rows if not r.get("peer")), key=lambda r: r["flops"])
        peers = [r for r in rows if r.get("peer")]
        if own:
            ax.plot([r["flops"] / 1e9 for r in own], [r["latency_ms"]["median"] for r in own],
                    marker=MARKERS[i % len(MARKERS)], color=colour, label=backend)
            for r in own:
                ax.annotate(r["variant"], (r["flops"] / 1e9, r["latency_ms"]["median"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=8, color=colour)
        for r in peers:
            ax.scatter([r["flops"] / 1e9], [r["latency_ms"]["median"]], marker="*", s=160, color=colour,
                       edgecolors="black", linewidths=0.6, zorder=3, label=None if own else backend)
            ax.annotate(r["variant"].upper(), (r["flops"] / 1e9, r["latency_ms"]["median"]),
                        textcoords="offset points", xytext=(6, -10), fontsize=8, color=colour)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GFLOPs per clip (multiply-adds)")
    ax.set_ylabel("median latency per clip (ms)")
    ax.set_title(title or "Latency vs compute per backend (stars: X3D peers)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_output(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return path
