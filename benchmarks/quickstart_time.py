"""The README's quick-start times: `make export`'s export step, and (``--setup``) a fresh install.

1. ``vmf-export --variant 560m --target all`` exactly as ``make export`` runs it (64 frames,
   default ``--jobs``), into a temp dir, timed from the outside, with an empty cache (the parity
   gate's reference logits are computed, as on a fresh machine); the step times it prints are kept.
2. With ``--setup``: ``make setup``'s install (``python -m venv`` + ``pip install -e '.[all]'``)
   into a temp venv, timed; it downloads or reads from pip's cache whatever it needs.

    .venv/bin/python benchmarks/quickstart_time.py            # the export
    .venv/bin/python benchmarks/quickstart_time.py --setup    # and a fresh install before it

Prints the figures and writes benchmarks/results/quickstart_time.json; a run without ``--setup``
keeps the install time (and its date) that the last ``--setup`` run recorded there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from vmf_deploy.bench.machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "quickstart_time.json"


def time_setup() -> float:
    """Seconds for ``python -m venv`` + ``pip install -e '.[all]'`` into a temp venv."""
    with tempfile.TemporaryDirectory(prefix="vmf-setup-") as work:
        venv = Path(work) / "venv"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "-e", f"{ROOT}[all]"], check=True)
        return time.perf_counter() - start


def time_export() -> dict:
    """Wall time of ``vmf-export --variant 560m --target all`` and the per-target times from its summary."""
    exe = Path(sys.executable).parent / "vmf-export"
    with tempfile.TemporaryDirectory(prefix="vmf-quickstart-") as out:
        start = time.perf_counter()
        cold = {**os.environ, "VMF_CACHE": str(Path(out) / "cache")}  # as on a fresh machine: no cached reference
        done = subprocess.run([str(exe), "--variant", "560m", "--target", "all", "--out", out, "--force"],
                              capture_output=True, text=True, check=False, env=cold)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"vmf-export failed:\n{done.stdout}\n{done.stderr}")
    per_target = {m.group(1): float(m.group(2)) for m in
                  re.finditer(r"│ 560m\s+│ (\w+)\s+│.*│\s+([\d.]+) s │", done.stdout)}
    return {"wall_seconds": round(wall, 1), "per_target_seconds": per_target, "console": done.stdout}


def earlier_setup(path: Path) -> dict | None:
    """The install time an earlier ``--setup`` run recorded in ``path`` (``seconds``, ``created``), if any."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if "setup" in old:
        return old["setup"]
    if "setup_seconds" in old:  # the layout before the install got its own date
        return {"seconds": old["setup_seconds"], "created": old["created"]}
    return None


def main() -> None:
    """Measure, print, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", action="store_true", help="also time a fresh install into a temp venv")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    record = {"benchmark": "quickstart_time", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "cpu": cpu_model()}
    if args.setup:
        record["setup"] = {"seconds": round(time_setup(), 1), "created": record["created"]}
        print(f"setup (venv + pip install -e '.[all]'): {record['setup']['seconds']:.0f} s", flush=True)
    elif earlier := earlier_setup(args.json):
        record["setup"] = earlier  # an export-only run keeps the last measured install, with its date
    record["export"] = time_export()
    print(record["export"]["console"])
    print(f"vmf-export --variant 560m --target all: {record['export']['wall_seconds']:.0f} s wall on {record['cpu']}; "
          + ", ".join(f"{t} {s:.0f} s" for t, s in record["export"]["per_target_seconds"].items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
