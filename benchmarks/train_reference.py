"""The trained reference: 560m trained on the procedural action dataset, judged on decoded video files.

    .venv/bin/python benchmarks/train_reference.py                 # train (~15 min on 2 cores), then judge
    .venv/bin/python benchmarks/train_reference.py --skip-train    # judge the run already in --run-dir

1. Trains with the README's command, ``vmf-train --variant 560m --data synthetic --frames 16
   --size 48 --epochs 13 --batch-size 32 --lr 1.5e-3 --train-clips 3200 --out RUN_DIR``,
   timing the whole command.
2. Writes the held-out ``test`` split as encoded videos with ``vmf-dataset synth`` (longer
   than the training clips, so the sampler picks 16 of ``--video-frames``).
3. Exports the checkpoint to ONNX and ExecuTorch (``vmf-export``'s pipeline, parity gate
   included) and runs ``vmf-val``'s library on those files: top-1/top-5 of PyTorch and of both
   artifacts, their agreement with PyTorch, and the per-class table.
4. Proves the dataset needs time: the same decoded clips with their frames shuffled (one
   random permutation per clip) and with their middle frame repeated ``T`` times.

Prints a table and writes ``benchmarks/results/train_reference.json``; ``--skip-train`` keeps the
training time that file recorded for the same command.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "train_reference.json"


def train_command(run_dir: Path, args: argparse.Namespace) -> list[str]:
    """The ``vmf-train`` command line of the reference (the README's)."""
    return ["vmf-train", "--variant", "560m", "--data", "synthetic", "--frames", str(args.frames),
            "--size", str(args.size), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
            "--lr", str(args.lr), "--train-clips", str(args.train_clips), "--out", str(run_dir)]


def time_ablations(checkpoint: Path, data: Path, seed: int = 0) -> dict[str, float]:
    """Top-1 of the checkpoint on ``data`` as decoded, with frames shuffled, and with one frame repeated."""
    import numpy as np
    import torch

    from vmf_deploy.checkpoint import checkpoint_classes, load_checkpoint, read_checkpoint_metadata
    from vmf_deploy.datasets import VideoFolder
    from vmf_deploy.preprocess import PreprocessSpec

    model = load_checkpoint(checkpoint)
    spec = PreprocessSpec.from_dict(read_checkpoint_metadata(checkpoint)["preprocessing"])
    source = VideoFolder(data, spec, tuple(checkpoint_classes(checkpoint)))
    rng = np.random.default_rng(seed)
    correct = {"decoded": 0, "frames_shuffled": 0, "single_frame": 0}
    seen = 0
    with torch.inference_mode():
        for i in range(len(source)):
            item = source.load(i)
            if item is None:
                continue
            clip, label = item
            t = clip.shape[1]
            inputs = {"decoded": clip, "frames_shuffled": clip[:, rng.permutation(t)],
                      "single_frame": np.repeat(clip[:, t // 2:t // 2 + 1], t, axis=1)}
            for name, x in inputs.items():
                logits = model(torch.from_numpy(np.ascontiguousarray(x)[None]))
                correct[name] += int(logits.argmax(1).item() == label)
            seen += 1
    return {name: n / seen for name, n in correct.items()} | {"clips": seen}


def main(argv: list[str] | None = None) -> int:
    """Train (unless --skip-train), judge on decoded files, print and write the results."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", type=Path, default=REPO / "runs" / "reference-560m")
    p.add_argument("--data-dir", type=Path, default=REPO / "runs" / "synthetic-test")
    p.add_argument("--skip-train", action="store_true", help="judge the run already in --run-dir")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--epochs", type=int, default=13)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--train-clips", type=int, default=3200)
    p.add_argument("--per-class", type=int, default=25, help="test videos per class (default 25: 300 videos)")
    p.add_argument("--video-frames", type=int, default=32, help="frames per test video (default 32)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    bin_dir = Path(sys.executable).parent
    train_seconds = None
    command = train_command(args.run_dir, args)
    if not args.skip_train:
        start = time.perf_counter()
        subprocess.run([str(bin_dir / command[0]), *command[1:]], check=True)
        train_seconds = time.perf_counter() - start
    elif args.out.is_file() and json.loads(args.out.read_text()).get("command") == " ".join(command):
        train_seconds = json.loads(args.out.read_text())["train_seconds"]  # the run judged again
    checkpoint = args.run_dir / "last.safetensors"
    history = json.loads((args.run_dir / "history.json").read_text())
    from vmf_deploy.checkpoint import read_checkpoint_metadata

    train_clips = read_checkpoint_metadata(checkpoint)["training"]["config"]["train_clips"]

    subprocess.run([str(bin_dir / "vmf-dataset"), "synth", "--out", str(args.data_dir), "--per-class",
                    str(args.per_class), "--frames", str(args.video_frames), "--size", str(args.size)], check=True)
    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.pipeline import export_model
    from vmf_deploy.validate import validate

    artifacts = [export_model("560m", target, args.run_dir / "artifacts", checkpoint=checkpoint, force=True).artifact
                 for target in ("onnx", "executorch")]
    report = validate(checkpoint, [(path, None) for path in artifacts], str(args.data_dir))
    summary = report.summary(report.rows[0])
    exported = [report.summary(row) for row in report.rows[1:]]
    ablations = time_ablations(checkpoint, args.data_dir)
    per_class = report.per_class(report.rows[0])
    doc = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": describe(host_device_info()),
        "command": " ".join(command),
        "train_seconds": train_seconds,
        "epochs": len(history),
        "train_clips_per_epoch": train_clips,
        "clips_per_second_median": sorted(h["clips_per_second"] for h in history)[len(history) // 2],
        "history": history,
        "test_data": {"dir": str(args.data_dir), "videos": summary["clips"], "per_class": args.per_class,
                      "video_frames": args.video_frames, "size": args.size, "skipped": len(report.skipped)},
        "top1": summary["top1"], "top5": summary["top5"],
        "top1_frames_shuffled": ablations["frames_shuffled"], "top1_single_frame": ablations["single_frame"],
        "top1_recomputed": ablations["decoded"],
        "chance": 1 / len(report.classes),
        "per_class_top1": per_class,
        "artifacts": [{k: row[k] for k in ("name", "backend", "top1", "top5", "top1_agreement", "top5_overlap",
                                           "cosine_min", "centered_sqnr_db")} for row in exported],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")

    minutes = "not timed (--skip-train of another run)" if train_seconds is None else f"{train_seconds / 60:.1f} min"
    print(f"# Trained reference: {doc['command']}\n")
    print(f"{doc['date']}, {doc['machine']}\n")
    print("| measure | value |\n|---|---|")
    print(f"| training time (whole command) | {minutes} |")
    print(f"| epochs × clips | {len(history)} × {train_clips} (fresh clips every epoch) |")
    print(f"| training clips/s (median epoch) | {doc['clips_per_second_median']:.1f} |")
    print(f"| held-out top-1, {summary['clips']} decoded videos | {doc['top1']:.1%} |")
    print(f"| held-out top-5 | {doc['top5']:.1%} |")
    print(f"| top-1, frames shuffled | {doc['top1_frames_shuffled']:.1%} |")
    print(f"| top-1, middle frame repeated | {doc['top1_single_frame']:.1%} |")
    print(f"| chance | {doc['chance']:.1%} |\n")
    print("| artifact | backend | top-1 | top-5 | top-1 agreement | centered SQNR dB |\n|---|---|---|---|---|---|")
    for row in doc["artifacts"]:
        print(f"| {row['name']} | {row['backend']} | {row['top1']:.1%} | {row['top5']:.1%} | "
              f"{row['top1_agreement']:.1%} | {row['centered_sqnr_db']:.1f} |")
    print()
    print("| class | top-1 |\n|---|---|")
    for name, value in per_class.items():
        print(f"| {name} | {value:.1%} |")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
