"""Loading a ``.pte`` in a fresh process: ``executorch.runtime`` against the bindings alone.

``executorch.runtime`` imports ``portable_lib``, which imports all of ``executorch.exir`` before it
re-exports the compiled ``_C`` extension. ``vmf_deploy.runners.executorch_bindings`` loads ``_C``
alone. For each route, a fresh Python process imports torch (common to both, not timed), then
times the route's imports, ``load_program`` and ``load_method("forward")``, runs one all-zeros clip,
and reports the resident-set growth. The routes alternate, ``--rounds`` times each; medians.

    .venv/bin/python benchmarks/executorch_load.py ARTIFACT.pte [--rounds 5]

Prints a table and writes benchmarks/results/executorch_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "executorch_load.json"

CHILD = r"""
import json, sys, time
import numpy as np
import torch

def rss_kib():
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS")))

route, path = sys.argv[1], sys.argv[2]
before, t0 = rss_kib(), time.perf_counter()
if route == "executorch.runtime":
    from executorch.runtime import Runtime
    imported = time.perf_counter()
    method = Runtime.get().load_program(path).load_method("forward")
    run, meta = method.execute, method.metadata
else:
    from vmf_deploy.runners.executorch_bindings import load_program
    imported = time.perf_counter()
    program = load_program(path)
    method = program.load_method("forward")
    run, meta = method, method.method_meta()
loaded = time.perf_counter()
shape = tuple(meta.input_tensor_meta(0).sizes())
logits = run([torch.zeros(shape)])[0].numpy()
print(json.dumps({"import_s": imported - t0, "load_s": loaded - imported, "total_s": loaded - t0,
                  "rss_growth_mib": (rss_kib() - before) / 1024,
                  "exir_imported": "executorch.exir" in sys.modules, "logits": logits.tolist()}))
"""

ROUTES = ("executorch.runtime", "vmf_deploy.runners.executorch_bindings")


def measure(route: str, artifact: Path) -> dict:
    """One fresh process loading ``artifact`` through ``route``."""
    done = subprocess.run([sys.executable, "-c", CHILD, route, str(artifact)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    if done.returncode:
        raise SystemExit(f"{route} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure both routes interleaved, print the medians and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", type=Path, help="a .pte written by vmf-export --target executorch")
    parser.add_argument("--rounds", type=int, default=5, help="processes per route (default 5)")
    args = parser.parse_args()
    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.manifest import write_json_atomic

    samples: dict[str, list[dict]] = {r: [] for r in ROUTES}
    for _ in range(args.rounds):
        for route in ROUTES:
            samples[route].append(measure(route, args.artifact))
    same = all(s["logits"] == samples[ROUTES[0]][0]["logits"] for r in ROUTES for s in samples[r])
    rows = {}
    device = host_device_info()
    print(f"{args.artifact.name} · {describe(device)} · {args.rounds} fresh processes per route, interleaved")
    print(f"{'route':42} {'import s':>9} {'load s':>8} {'total s':>8} {'RSS +MiB':>9}  exir imported")
    for route, runs in samples.items():
        med = {k: statistics.median(s[k] for s in runs) for k in ("import_s", "load_s", "total_s", "rss_growth_mib")}
        rows[route] = {**med, "samples_total_s": [s["total_s"] for s in runs],
                       "exir_imported": all(s["exir_imported"] for s in runs)}
        print(f"{route:42} {med['import_s']:9.2f} {med['load_s']:8.3f} {med['total_s']:8.2f} "
              f"{med['rss_growth_mib']:9.0f}  {rows[route]['exir_imported']}")
    print(f"identical logits on a zeros clip: {same}")
    doc = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": device,
           "load_average": os.getloadavg(),
           "artifact": str(args.artifact), "rounds": args.rounds, "identical_logits": same, "routes": rows}
    write_json_atomic(RESULTS, doc)


if __name__ == "__main__":
    main()
