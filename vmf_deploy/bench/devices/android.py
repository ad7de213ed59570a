"""``android``: benchmark the ExecuTorch ``.pte`` on a phone over adb.

Two ways, the first that is available:

- the native runner ``vmf_run`` (latency, memory AND parity), steps below;
- the demo app's benchmark mode (``android_demo``, ``BenchmarkActivity``; latency and memory
  on the app's synthetic input, no parity), see :func:`bench_with_app`.

Native-runner steps (each an ``adb -s SERIAL`` command, see :func:`bench_on_device`):

1. ``adb push`` the Android build of ``vmf_run`` (``$VMF_ANDROID_RUNNER``, default
   ``runtimes/build-android/vmf_run``; how to build it: docs/android.md), the ``.pte``, its
   manifest and label file, and the parity clips as raw float32, into ``/data/local/tmp/vmf-bench``;
2. ``vmf_run MODEL.pte --input-raw clip0.raw --bench --warmup W --runs N --threads T --json result.json``
   (the runner writes a ``vmf-deploy/bench`` document with the phone's device info);
3. ``vmf_run MODEL.pte --input-raw clipK.raw --output-raw logitsK.raw`` per parity clip;
4. ``adb pull`` the document and the logits, remove the folder on the phone, and merge: the
   host adds FLOPs and the parity against PyTorch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from . import device_result, read_raw_logits, write_raw_clips
from .adb import Adb, DeviceError, DeviceUnavailable

if TYPE_CHECKING:
    from ..harness import BenchSettings, Harness

REMOTE_DIR = "/data/local/tmp/vmf-bench"
APP_PACKAGE = "org.vmfdeploy.demo"
APP_RESULT_DIR = f"/sdcard/Android/data/{APP_PACKAGE}/files"
REPO_ROOT = Path(__file__).resolve().parents[3]


def android_runner_binary() -> Path:
    """The Android (arm64) build of ``vmf_run``: ``$VMF_ANDROID_RUNNER`` or ``runtimes/build-android/vmf_run``."""
    return Path(os.environ.get("VMF_ANDROID_RUNNER") or REPO_ROOT / "runtimes" / "build-android" / "vmf_run")


def bench_on_device(adb: Adb, runner: Path, pte: Path, clips: list[Path], settings: "BenchSettings",
                    local_dir: Path) -> tuple[dict, list[Path]]:
    """Push, run and pull (module docstring); returns the device's document and the pulled logits files."""
    manifest_file = Path(str(pte) + ".manifest.json")
    manifest = json.loads(manifest_file.read_text())
    labels = pte.parent / manifest["labels"]["file"]
    adb.shell(["rm", "-rf", REMOTE_DIR])
    adb.shell(["mkdir", "-p", REMOTE_DIR])
    try:
        for local in (runner, pte, manifest_file, labels, *clips):
            adb.push(local, f"{REMOTE_DIR}/{local.name}")
        adb.shell(["chmod", "755", f"./{runner.name}"], cwd=REMOTE_DIR)
        run = [f"./{runner.name}", pte.name, "--manifest", manifest_file.name]
        adb.shell([*run, "--input-raw", clips[0].name, "--bench", "--warmup", str(settings.warmup),
                   "--runs", str(settings.runs), "--threads", str(settings.threads), "--json", "result.json"],
                  cwd=REMOTE_DIR)
        for i, clip in enumerate(clips):
            adb.shell([*run, "--input-raw", clip.name, "--output-raw", f"logits{i}.raw"], cwd=REMOTE_DIR)
        local_dir.mkdir(parents=True, exist_ok=True)
        adb.pull(f"{REMOTE_DIR}/result.json", local_dir / "result.json")
        logits = []
        for i in range(len(clips)):
            adb.pull(f"{REMOTE_DIR}/logits{i}.raw", local_dir / f"logits{i}.raw")
            logits.append(local_dir / f"logits{i}.raw")
    finally:
        adb.shell(["rm", "-rf", REMOTE_DIR])
    try:
        doc = json.loads((local_dir / "result.json").read_text())
    except json.JSONDecodeError as e:
        raise DeviceError(f"the runner's result.json is not valid JSON ({e})") from None
    return doc, logits


def app_installed(adb: Adb) -> bool:
    """Whether the demo app (with its benchmark activity) is installed on the device."""
    return f"package:{APP_PACKAGE}" in adb.shell(["pm", "list", "packages", APP_PACKAGE]).split()


def bench_with_app(adb: Adb, pte: Path, settings: "BenchSettings", local_dir: Path, poll_s: float = 1.0) -> dict:
    """Drive the demo app's ``BenchmarkActivity`` (docs/android.md) and pull its results document.

    Pushes the ``.pte``, manifest and labels, starts the activity with ``am start -W`` and waits
    (up to the timeout) for ``bench.json`` or ``bench_error.txt`` in the app's external files.
    """
    import time

    manifest_file = Path(str(pte) + ".manifest.json")
    labels = pte.parent / json.loads(manifest_file.read_text())["labels"]["file"]
    adb.shell(["rm", "-rf", REMOTE_DIR])
    adb.shell(["mkdir", "-p", REMOTE_DIR])
    try:
        for local in (pte, manifest_file, labels):
            adb.push(local, f"{REMOTE_DIR}/{local.name}")
        adb.shell(["am", "start", "-W", "-n", f"{APP_PACKAGE}/.BenchmarkActivity", "--es", "model",
                   f"{REMOTE_DIR}/{pte.name}", "--ei", "warmup", str(settings.warmup), "--ei", "runs",
                   str(settings.runs), "--ei", "threads", str(settings.threads)])
        deadline = time.monotonic() + settings.timeout_s
        result, error = f"{APP_RESULT_DIR}/bench.json", f"{APP_RESULT_DIR}/bench_error.txt"
        while True:
            listing = adb.shell(["ls", APP_RESULT_DIR])
            if "bench_error.txt" in listing.split():
                raise DeviceError(f"the demo app's benchmark failed: {adb.shell(['cat', error]).strip()}")
            if "bench.json" in listing.split():
                break
            if time.monotonic() > deadline:
                raise DeviceError(f"the demo app wrote no {result} within {settings.timeout_s:.0f} s")
            time.sleep(poll_s)
        local_dir.mkdir(parents=True, exist_ok=True)
        adb.pull(result, local_dir / "bench.json")
    finally:
        adb.shell(["rm", "-rf", REMOTE_DIR])
    return json.loads((local_dir / "bench.json").read_text())


def run_android(variant: str, harness: "Harness") -> dict:
    """One ``android`` result for ``variant`` (``skipped`` without adb/device/runner build, ``failed`` on errors)."""
    from ...runners import RunnerError
    from ..harness import empty_result, one_line

    settings = harness.settings
    try:
        adb = Adb.connect(settings.timeout_s)
    except DeviceUnavailable as e:
        return empty_result("android", variant, str(e), settings.threads)
    runner = android_runner_binary()
    try:
        use_app = not runner.is_file() and app_installed(adb)
    except DeviceError as e:
        return empty_result("android", variant, f"failed: {one_line(e)}", settings.threads)
    if not runner.is_file() and not use_app:
        return empty_result("android", variant, f"skipped: no Android build of vmf_run at {runner} and no "
                            f"{APP_PACKAGE} app on the device (build either as docs/android.md says; "
                            "$VMF_ANDROID_RUNNER names the runner)", settings.threads)
    try:
        ref = harness.reference(variant)
        pte = harness.artifact_for("executorch-xnnpack", variant)
        local = harness.workdir / "android" / variant
        if use_app:
            return device_result("android", variant, ref, pte, bench_with_app(adb, pte, settings, local), None)
        clips = write_raw_clips(ref, local / "clips")
        doc, logit_files = bench_on_device(adb, runner, pte, clips, settings, local)
        shape = tuple(ref.logits[0].shape)
        logits = [read_raw_logits(p, shape) for p in logit_files]
        return device_result("android", variant, ref, pte, doc, logits)
    except (DeviceError, RunnerError, ValueError, OSError, KeyError) as e:
        return empty_result("android", variant, f"failed: {one_line(e)}", settings.threads)
