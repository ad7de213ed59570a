"""``vmf-predict`` on one short video, end to end in a fresh process: this tree against an older revision.

A user who predicts on a few clips waits mostly for imports. For each artifact, each round runs
``python -m vmf_deploy.cli.predict --artifact ARTIFACT VIDEO`` from this checkout and from a
``git worktree`` of ``--baseline``, alternating, and times the whole process; the tool's own
"loaded in" figure is parsed from its output. Medians over ``--rounds``.

    .venv/bin/python benchmarks/predict_startup.py A.onnx B.pte --baseline c2d9819 [--rounds 5]

The video is written by ``tests/video_factory.py`` (90 frames of 320×240). Prints a table and
writes benchmarks/results/predict_startup.json.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "predict_startup.json"
LOADED = re.compile(r"loaded in ([\d.]+) s")


def predict_once(tree: Path, artifact: Path, video: Path) -> dict:
    """Run vmf-predict from ``tree`` in a fresh process; its wall time and the "loaded in" it printed."""
    env = {**os.environ, "PYTHONPATH": str(tree)}  # ahead of the editable install's finder
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vmf_deploy.cli.predict", "--artifact", str(artifact), str(video)],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"vmf-predict from {tree} failed on {artifact}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    loaded = LOADED.search(" ".join(done.stdout.split()))
    return {"wall_s": wall, "loaded_s": float(loaded.group(1)) if loaded else None}


def main() -> None:
    """Measure both trees interleaved, print the medians and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifacts", type=Path, nargs="+", help="artifacts written by vmf-export")
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=5, help="processes per artifact and tree (default 5)")
    args = parser.parse_args()
    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.manifest import write_json_atomic

    sys.path.insert(0, str(REPO / "tests"))
    from video_factory import write_video

    with tempfile.TemporaryDirectory(prefix="vmf-predict-startup-") as work:
        baseline = Path(work) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(baseline), args.baseline], cwd=REPO, check=True)
        try:
            video = write_video(Path(work) / "street.avi", 90, (320, 240))
            trees = {"this tree": REPO, f"baseline {args.baseline}": baseline}
            samples = {(a.name, t): [] for a in args.artifacts for t in trees}
            for _ in range(args.rounds):
                for artifact in args.artifacts:
                    for name, tree in trees.items():
                        samples[(artifact.name, name)].append(predict_once(tree, artifact.resolve(), video))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=REPO, check=True)
    rows = []
    device = host_device_info()
    print(f"vmf-predict, one 90-frame 320×240 video · {describe(device)} · {args.rounds} fresh processes each, "
          "interleaved")
    print(f"{'artifact':28} {'tree':24} {'wall s':>8} {'loaded in s':>12}")
    for (artifact, tree), runs in samples.items():
        loaded = [r["loaded_s"] for r in runs if r["loaded_s"] is not None]
        row = {"artifact": artifact, "tree": tree, "wall_s": statistics.median(r["wall_s"] for r in runs),
               "loaded_s": statistics.median(loaded) if loaded else None, "samples": runs}
        rows.append(row)
        shown = f"{row['loaded_s']:.2f}" if row["loaded_s"] is not None else "—"
        print(f"{artifact:28} {tree:24} {row['wall_s']:8.2f} {shown:>12}")
    doc = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": device,
           "load_average": os.getloadavg(),
           "baseline": args.baseline, "rounds": args.rounds, "rows": rows}
    write_json_atomic(RESULTS, doc)


if __name__ == "__main__":
    main()
