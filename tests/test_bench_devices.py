"""Phone backends without a phone: a fake ``adb`` on PATH records every command and plays the device."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from vmf_deploy.bench.devices.adb import Adb, parse_devices
from vmf_deploy.bench.devices.android import REMOTE_DIR, run_android
from vmf_deploy.bench.devices.ios import Devicectl, parse_device_list, run_ios
from vmf_deploy.bench.harness import BenchSettings, Harness, build_document
from vmf_deploy.bench.machine import host_device_info
from vmf_deploy.bench.schema import validate

FAKE_ADB = r'''#!{python}
"""Fake adb: logs argv, maps device paths under $FAKE_ADB_ROOT, plays vmf_run."""
import json, os, shlex, shutil, sys
from pathlib import Path

root = Path(os.environ["FAKE_ADB_ROOT"])
with open(os.environ["FAKE_ADB_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
args = sys.argv[1:]
if args == ["devices"]:
    print("List of devices attached")
    for line in os.environ.get("FAKE_ADB_DEVICES", "").split(","):
        if line:
            print(line.replace(":", "\t"))
    sys.exit(0)
assert args[0] == "-s", args
args = args[2:]
dev = lambda p: root / p.lstrip("/")
if args[0] == "push":
    dev(args[2]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(args[1], dev(args[2]))
elif args[0] == "pull":
    shutil.copy(dev(args[1]), args[2])
elif args[0] == "shell":
    line = args[1].removesuffix("; echo __vmf_exit=$?")
    cwd = root
    if line.startswith("cd "):
        first, line = line.split(" && ", 1)
        cwd = dev(shlex.split(first)[1])
    argv = shlex.split(line)
    if argv[0] == "rm":
        shutil.rmtree(dev(argv[-1]), ignore_errors=True)
    elif argv[0] == "mkdir":
        dev(argv[-1]).mkdir(parents=True, exist_ok=True)
    elif argv[0] == "pm":
        print("package:org.vmfdeploy.demo" if os.environ.get("FAKE_ADB_APP") else "")
    elif argv[0] == "am":
        out = root / "sdcard/Android/data/org.vmfdeploy.demo/files"
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.environ["FAKE_ADB_DOC"], out / "bench.json")
    elif argv[0] == "ls":
        d = dev(argv[1])
        print("\n".join(sorted(p.name for p in d.iterdir())) if d.is_dir() else "")
    elif argv[0].endswith("vmf_run"):
        assert (cwd / argv[0]).is_file() and (cwd / argv[1]).is_file(), "runner and model must be pushed"
        opt = {argv[i]: argv[i + 1] for i in range(2, len(argv) - 1) if argv[i].startswith("--")}
        assert (cwd / opt["--input-raw"]).is_file()
        if "--json" in opt:
            shutil.copy(os.environ["FAKE_ADB_DOC"], cwd / opt["--json"])
        if "--output-raw" in opt:
            k = opt["--input-raw"].removeprefix("clip").removesuffix(".raw")
            shutil.copy(Path(os.environ["FAKE_ADB_LOGITS"]) / f"logits{k}.raw", cwd / opt["--output-raw"])
    print("__vmf_exit=0")
'''


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    """A fake adb on PATH; returns a function reading back the logged commands."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(FAKE_ADB.replace("{python}", sys.executable))
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "adb.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("ADB", raising=False)
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path / "device"))
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))
    monkeypatch.setenv("FAKE_ADB_DEVICES", "FAKE123:device")
    return lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def phone_document(threads: int) -> dict:
    """What vmf_run --bench --json writes on a phone (vmf-deploy/bench v1)."""
    device = {"name": "Google Pixel 8", "kind": "android", "os": "Android 15 (API 35)", "arch": "arm64-v8a",
              "cpu_model": "Tensor G3", "physical_cores": None, "logical_cores": 9, "isa_flags": [],
              "memory_bytes": 8_000_000_000, "gpu": None, "libraries": {"executorch": "1.5.1"}}
    samples = [41.0, 40.0, 43.5]
    result = {"backend": "executorch-native", "variant": "560m", "status": "ok", "device": device["name"],
              "input_shape": [1, 3, 4, 172, 172], "threads": threads,
              "artifact": {"path": "m.pte", "format": "pte", "size_bytes": 1234, "sha256": None},
              "params": None, "flops": None, "load_ms": 12.5,
              "latency_ms": {"median": 41.0, "p90": 43.0, "min": 40.0, "max": 43.5, "mean": 41.5, "samples": samples},
              "clips_per_s": 1000 / 41.0, "gflops_per_s": None,
              "memory": {"peak_rss_bytes": 90_000_000, "baseline_rss_bytes": 60_000_000,
                         "inference_rss_bytes": 30_000_000, "method": "VmHWM of /proc/self/status (in-process)"},
              "parity": None}
    return {"schema": "vmf-deploy/bench", "schema_version": 1, "created": "2026-11-24T01:00:00Z",
            "tool": {"name": "vmf_run", "version": "0.1.0"}, "device": device,
            "settings": {"threads": threads, "warmup": 1, "runs": 3, "frames": 4}, "results": [result], "records": []}


@pytest.fixture
def harness_with_pte(tmp_path):
    """A harness at 4 frames whose .pte is a given (fake) artifact with manifest and labels: no export."""
    pte = tmp_path / "art" / "560m-4f.pte"
    pte.parent.mkdir()
    pte.write_bytes(b"PTE")
    (pte.parent / "labels.txt").write_text("a\n")
    Path(str(pte) + ".manifest.json").write_text(json.dumps({"labels": {"file": "labels.txt", "count": 400}}))
    settings = BenchSettings(threads=2, warmup=1, runs=3, frames=4, parity_seeds=(0, 1))
    return Harness(settings, tmp_path / "work", artifacts=[pte]), pte


def test_parse_devices_states():
    out = "List of devices attached\n* daemon started\nA1\tdevice\nB2\tunauthorized\n\n"
    assert parse_devices(out) == [("A1", "device"), ("B2", "unauthorized")]


def test_android_skips_without_adb(tmp_path, monkeypatch, harness_with_pte):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("ADB", raising=False)
    result = run_android("560m", harness_with_pte[0])
    assert result["status"] == "skipped: adb not installed (install Android platform-tools or set $ADB)"
    assert result["latency_ms"] is None


@pytest.mark.parametrize("devices,reason", [("", "skipped: no adb device"),
                                            ("X9:unauthorized", "skipped: adb device X9 is unauthorized")])
def test_android_skips_without_a_ready_device(fake_adb, monkeypatch, harness_with_pte, devices, reason):
    monkeypatch.setenv("FAKE_ADB_DEVICES", devices)
    result = run_android("560m", harness_with_pte[0])
    assert result["status"].startswith(reason)
    assert fake_adb() == [["devices"]]


def test_android_skips_without_runner_build(fake_adb, monkeypatch, tmp_path, harness_with_pte):
    monkeypatch.setenv("VMF_ANDROID_RUNNER", str(tmp_path / "missing" / "vmf_run"))
    result = run_android("560m", harness_with_pte[0])
    assert result["status"].startswith("skipped: no Android build of vmf_run")


def test_android_pushes_runs_pulls_and_merges(fake_adb, monkeypatch, tmp_path, harness_with_pte):
    harness, pte = harness_with_pte
    runner = tmp_path / "vmf_run"
    runner.write_text("#!/bin/sh\n")
    monkeypatch.setenv("VMF_ANDROID_RUNNER", str(runner))
    doc_file = tmp_path / "phone.json"
    doc_file.write_text(json.dumps(phone_document(threads=2)))
    monkeypatch.setenv("FAKE_ADB_DOC", str(doc_file))
    ref = harness.reference("560m")
    logits_dir = tmp_path / "phone_logits"
    logits_dir.mkdir()
    for i, logits in enumerate(ref.logits):  # the phone computes exactly the reference logits
        logits.astype("<f4").tofile(logits_dir / f"logits{i}.raw")
    monkeypatch.setenv("FAKE_ADB_LOGITS", str(logits_dir))

    result = run_android("560m", harness)

    assert result["status"] == "ok", result["status"]
    assert result["backend"] == "android" and result["device"] == "Google Pixel 8"
    assert result["latency_ms"]["median"] == 41.0 and result["latency_ms"]["samples"] == [41.0, 40.0, 43.5]
    assert result["flops"] == ref.flops and result["gflops_per_s"] == pytest.approx(ref.flops / 1e9 / 0.041)
    assert result["parity"]["max_rel_error"] == 0.0 and result["parity"]["top1_agreement"] == 1.0
    assert result["memory"]["inference_rss_bytes"] == 30_000_000
    doc = build_document([result], harness.settings, host_device_info())
    validate(doc)
    assert {r["deviceInfo"]["device"] for r in doc["records"]} == {"Google Pixel 8"}

    calls = fake_adb()
    assert calls[0] == ["devices"]
    assert all(c[:2] == ["-s", "FAKE123"] for c in calls[1:])
    calls = calls[1:]
    pushed = [Path(c[3]).name for c in calls if c[2] == "push"]
    assert pushed == ["vmf_run", pte.name, pte.name + ".manifest.json", "labels.txt", "clip0.raw", "clip1.raw"]
    shells = [c[3] for c in calls if c[2] == "shell"]
    bench = next(s for s in shells if "--bench" in s)
    assert bench.startswith(f"cd {REMOTE_DIR} && ./vmf_run {pte.name} --manifest {pte.name}.manifest.json "
                            "--input-raw clip0.raw --bench --warmup 1 --runs 3 --threads 2 --json result.json")
    assert sum("--output-raw" in s for s in shells) == 2
    assert shells[-1].startswith(f"rm -rf {REMOTE_DIR}")  # the phone is left clean
    assert [c[3] for c in calls if c[2] == "pull"] == [f"{REMOTE_DIR}/result.json", f"{REMOTE_DIR}/logits0.raw",
                                                        f"{REMOTE_DIR}/logits1.raw"]


def test_android_failed_row_on_a_bad_device_document(fake_adb, monkeypatch, tmp_path, harness_with_pte):
    harness, _ = harness_with_pte
    runner = tmp_path / "vmf_run"
    runner.write_text("")
    monkeypatch.setenv("VMF_ANDROID_RUNNER", str(runner))
    bad = phone_document(2)
    bad["results"][0]["latency_ms"]["samples"] = []
    (tmp_path / "phone.json").write_text(json.dumps(bad))
    monkeypatch.setenv("FAKE_ADB_DOC", str(tmp_path / "phone.json"))
    ref = harness.reference("560m")
    (tmp_path / "l").mkdir()
    for i, logits in enumerate(ref.logits):
        logits.astype("<f4").tofile(tmp_path / "l" / f"logits{i}.raw")
    monkeypatch.setenv("FAKE_ADB_LOGITS", str(tmp_path / "l"))
    result = run_android("560m", harness)
    assert result["status"].startswith("failed: ") and "samples" in result["status"]
    assert result["latency_ms"] is None


def test_adb_shell_reports_remote_failure(fake_adb, tmp_path):
    adb = Adb.connect()
    with pytest.raises(Exception, match="exit"):
        adb.shell(["./vmf_run", "missing.pte"], cwd="/nowhere")


def test_ios_is_skipped_off_macos(harness_with_pte):
    if sys.platform == "darwin":
        pytest.skip("runs on macOS only when a device is attached")
    assert run_ios("560m", harness_with_pte[0])["status"].startswith("skipped: needs macOS")


def test_ios_commands_and_device_list():
    listing = {"result": {"devices": [
        {"identifier": "X",
         "hardwareProperties": {"platform": "iOS", "udid": "0000-AAAA", "marketingName": "iPhone 15"},
         "connectionProperties": {"tunnelState": "connected"}, "deviceProperties": {"name": "Ann's iPhone",
                                                                                   "osVersionNumber": "18.1"}},
        {"identifier": "W", "hardwareProperties": {"platform": "watchOS", "udid": "W1"}, "connectionProperties": {}},
    ]}}
    assert parse_device_list(listing) == [{"udid": "0000-AAAA", "name": "Ann's iPhone", "os": "iOS 18.1"}]
    ctl = Devicectl("0000-AAAA", "org.vmfdeploy.bench")
    assert ctl.copy_to_command(Path("/x/m.pte"), "m.pte") == [
        "xcrun", "devicectl", "device", "copy", "to", "--device", "0000-AAAA", "--domain-type", "appDataContainer",
        "--domain-identifier", "org.vmfdeploy.bench", "--source", "/x/m.pte", "--destination", "Documents/m.pte"]
    assert ctl.launch_command(["m.pte", "--bench"])[-4:] == ["org.vmfdeploy.bench", "--", "m.pte", "--bench"]
    assert "--console" in ctl.launch_command([])
    assert ctl.install_command(Path("/b/App.app"))[-1] == "/b/App.app"


def test_read_raw_logits_checks_size(tmp_path):
    from vmf_deploy.bench.devices import read_raw_logits

    np.zeros(399, dtype="<f4").tofile(tmp_path / "l.raw")
    with pytest.raises(ValueError, match="399 floats"):
        read_raw_logits(tmp_path / "l.raw", (1, 400))


def test_android_drives_the_demo_app_without_a_runner_build(fake_adb, monkeypatch, tmp_path, harness_with_pte):
    harness, pte = harness_with_pte
    monkeypatch.setenv("VMF_ANDROID_RUNNER", str(tmp_path / "missing" / "vmf_run"))
    monkeypatch.setenv("FAKE_ADB_APP", "1")
    doc_file = tmp_path / "phone.json"
    doc_file.write_text(json.dumps(phone_document(threads=2)))
    monkeypatch.setenv("FAKE_ADB_DOC", str(doc_file))
    result = run_android("560m", harness)
    assert result["status"] == "ok", result["status"]
    assert result["parity"] is None  # the app benchmarks a synthetic input: no parity claimed
    assert result["latency_ms"]["median"] == 41.0
    shells = [c[3] for c in fake_adb()[1:] if c[2] == "shell"]
    start = next(s for s in shells if s.startswith("am start"))
    assert start.startswith(f"am start -W -n org.vmfdeploy.demo/.BenchmarkActivity --es model {REMOTE_DIR}/"
                            f"{pte.name} --ei warmup 1 --ei runs 3 --ei threads 2")
