"""``ios``: benchmark the ExecuTorch ``.pte`` on an iPhone/iPad through Xcode's ``devicectl``.

Needs macOS with Xcode 16+ (``xcrun devicectl``), a connected, paired device, and a bench app:
an iOS app that links the vmf runtime (``runtimes/``) and, launched with the arguments of
``vmf_run`` (paths relative to its Documents folder), does what ``vmf_run`` does and writes
its files into Documents. Point ``$VMF_IOS_APP`` at the built ``.app`` and
``$VMF_IOS_BUNDLE_ID`` at its bundle identifier. Steps (see :func:`bench_on_device`):

1. ``xcrun devicectl device install app --device UDID APP``;
2. ``devicectl device copy to`` the ``.pte``, manifest, labels and raw parity clips into the
   app's Documents;
3. ``devicectl device process launch --console --terminate-existing UDID BUNDLE -- ARGS`` once
   with ``--bench ... --json result.json`` and once per clip with ``--output-raw logitsK.raw``;
4. ``devicectl device copy from`` the document and the logits, then merge as for Android.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import device_result, read_raw_logits, write_raw_clips
from .adb import DeviceError, DeviceUnavailable

if TYPE_CHECKING:
    from ..harness import BenchSettings, Harness

DEFAULT_BUNDLE_ID = "org.vmfdeploy.bench"


def parse_device_list(doc: dict) -> list[dict]:
    """Connected iOS devices of ``devicectl list devices --json-output`` as ``{udid, name, os}``."""
    out = []
    for d in doc.get("result", {}).get("devices", []):
        hw = d.get("hardwareProperties", {})
        conn = d.get("connectionProperties", {})
        if hw.get("platform") != "iOS" or conn.get("tunnelState") == "unavailable":
            continue
        props = d.get("deviceProperties", {})
        out.append({"udid": hw.get("udid") or d.get("identifier"),
                    "name": props.get("name", hw.get("marketingName", "")),
                    "os": f"iOS {props.get('osVersionNumber', '')}".strip()})
    return out


@dataclass
class Devicectl:
    """``xcrun devicectl`` commands against one device and one app."""

    udid: str
    bundle_id: str
    timeout_s: float = 1800.0

    @staticmethod
    def available() -> None:
        """Raise :class:`DeviceUnavailable` unless this is macOS with ``xcrun``."""
        if platform.system() != "Darwin":
            raise DeviceUnavailable("skipped: needs macOS (Xcode's devicectl drives the iOS device)")
        if not shutil.which("xcrun"):
            raise DeviceUnavailable("skipped: Xcode command-line tools not installed (xcode-select --install)")

    @classmethod
    def connect(cls, bundle_id: str, timeout_s: float = 1800.0) -> "Devicectl":
        """The first connected iOS device ($VMF_IOS_UDID to choose)."""
        cls.available()
        with tempfile.TemporaryDirectory() as tmp:
            listing = Path(tmp) / "devices.json"
            out = subprocess.run(["xcrun", "devicectl", "list", "devices", "--json-output", str(listing)],
                                 capture_output=True, text=True, timeout=120)
            if out.returncode != 0 or not listing.is_file():
                detail = " ".join(out.stderr.split())[-200:]
                raise DeviceUnavailable(f"skipped: devicectl could not list devices ({detail})")
            devices = parse_device_list(json.loads(listing.read_text()))
        wanted = os.environ.get("VMF_IOS_UDID")
        if wanted:
            devices = [d for d in devices if d["udid"] == wanted]
        if not devices:
            raise DeviceUnavailable("skipped: no iOS device" + (f" {wanted} ($VMF_IOS_UDID)" if wanted else ""))
        return cls(devices[0]["udid"], bundle_id, timeout_s)

    def install_command(self, app: Path) -> list[str]:
        """argv installing the bench app."""
        return ["xcrun", "devicectl", "device", "install", "app", "--device", self.udid, str(app)]

    def copy_to_command(self, local: Path, name: str) -> list[str]:
        """argv copying a file into the app's Documents."""
        return ["xcrun", "devicectl", "device", "copy", "to", "--device", self.udid, "--domain-type",
                "appDataContainer", "--domain-identifier", self.bundle_id, "--source", str(local),
                "--destination", f"Documents/{name}"]

    def copy_from_command(self, name: str, local: Path) -> list[str]:
        """argv copying a file of the app's Documents back to the host."""
        return ["xcrun", "devicectl", "device", "copy", "from", "--device", self.udid, "--domain-type",
                "appDataContainer", "--domain-identifier", self.bundle_id, "--source", f"Documents/{name}",
                "--destination", str(local)]

    def launch_command(self, args: list[str]) -> list[str]:
        """argv launching the app with ``args`` and waiting for it to exit (``--console``)."""
        return ["xcrun", "devicectl", "device", "process", "launch", "--device", self.udid, "--console",
                "--terminate-existing", self.bundle_id, "--", *args]

    def call(self, argv: list[str]) -> str:
        """Run one devicectl command (DeviceError with its output on failure)."""
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{' '.join(argv)} timed out after {self.timeout_s:.0f} s") from None
        if out.returncode != 0:
            raise DeviceError(f"{' '.join(argv)} failed (exit {out.returncode}): "
                              f"{' '.join((out.stderr or out.stdout).split())[-400:]}")
        return out.stdout


def bench_on_device(ctl: Devicectl, app: Path, pte: Path, clips: list[Path], settings: "BenchSettings",
                    local_dir: Path) -> tuple[dict, list[Path]]:
    """Install, copy, launch and copy back (module docstring); the device's document and logits files."""
    manifest_file = Path(str(pte) + ".manifest.json")
    labels = pte.parent / json.loads(manifest_file.read_text())["labels"]["file"]
    ctl.call(ctl.install_command(app))
    for local in (pte, manifest_file, labels, *clips):
        ctl.call(ctl.copy_to_command(local, local.name))
    run = [pte.name, "--manifest", manifest_file.name]
    ctl.call(ctl.launch_command([*run, "--input-raw", clips[0].name, "--bench", "--warmup", str(settings.warmup),
                                 "--runs", str(settings.runs), "--threads", str(settings.threads),
                                 "--json", "result.json"]))
    for i, clip in enumerate(clips):
        ctl.call(ctl.launch_command([*run, "--input-raw", clip.name, "--output-raw", f"logits{i}.raw"]))
    local_dir.mkdir(parents=True, exist_ok=True)
    ctl.call(ctl.copy_from_command("result.json", local_dir / "result.json"))
    logits = []
    for i in range(len(clips)):
        ctl.call(ctl.copy_from_command(f"logits{i}.raw", local_dir / f"logits{i}.raw"))
        logits.append(local_dir / f"logits{i}.raw")
    return json.loads((local_dir / "result.json").read_text()), logits


def run_ios(variant: str, harness: "Harness") -> dict:
    """One ``ios`` result for ``variant`` (``skipped`` off macOS / without device or app, ``failed`` on errors)."""
    from ...runners import RunnerError
    from ..harness import empty_result, one_line

    settings = harness.settings
    try:
        ctl = Devicectl.connect(os.environ.get("VMF_IOS_BUNDLE_ID", DEFAULT_BUNDLE_ID), settings.timeout_s)
    except DeviceUnavailable as e:
        return empty_result("ios", variant, str(e), settings.threads)
    app = Path(os.environ.get("VMF_IOS_APP", ""))
    if not os.environ.get("VMF_IOS_APP") or not app.is_dir():
        return empty_result("ios", variant, "skipped: no iOS bench app (build one that links runtimes/ and set "
                            "$VMF_IOS_APP to the .app, $VMF_IOS_BUNDLE_ID to its bundle id)", settings.threads)
    try:
        ref = harness.reference(variant)
        pte = harness.artifact_for("executorch-xnnpack", variant)
        local = harness.workdir / "ios" / variant
        clips = write_raw_clips(ref, local / "clips")
        doc, files = bench_on_device(ctl, app, pte, clips, settings, local)
        shape = tuple(ref.logits[0].shape)
        return device_result("ios", variant, ref, pte, doc, [read_raw_logits(p, shape) for p in files])
    except (DeviceError, RunnerError, ValueError, OSError, KeyError, json.JSONDecodeError) as e:
        return empty_result("ios", variant, f"failed: {one_line(e)}", settings.threads)
