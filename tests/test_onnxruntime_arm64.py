"""``onnxruntime-arm64``: the cached aarch64 userland, and ``.onnx`` parity on onnxruntime's ARM kernels under qemu.

The default run builds (or reuses) the userland and checks the 560m 16-frame ``.onnx`` through the
parity gate and vmf-bench on ``cortex-a76`` and ``cortex-a53``, the trained fixture through vmf-val,
and that a tampered ``.onnx`` is refused. The int8 check is in ``test_int8.py``.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest

from vmf_deploy.arm64 import qemu, userland
from vmf_deploy.arm64.qemu import MIDR, cpu_view, qemu_binary, write_cpu_files
from vmf_deploy.arm64.userland import STAMP_NAME, UserlandError, build_inputs, build_userland, read_stamp
from vmf_deploy.manifest import manifest_path
from vmf_deploy.runners import BackendUnavailable, RunnerError, get_runner
from vmf_deploy.runners import onnxruntime_arm64 as arm64_runner

REPO = Path(__file__).resolve().parents[1]


# ----- without qemu --------------------------------------------------------------------------------

def test_cpu_files_describe_the_emulated_core(tmp_path: Path) -> None:
    write_cpu_files(tmp_path, "cortex-a53", count=4)
    text = (tmp_path / "proc" / "cpuinfo").read_text()
    assert text.count("processor\t:") == 4 and "CPU implementer\t: 0x41" in text and "CPU part\t: 0xd03" in text
    assert "CPU variant\t: 0x0" in text and "CPU revision\t: 4" in text
    assert (tmp_path / "sys/devices/system/cpu/possible").read_text() == "0-3\n"
    assert (tmp_path / "sys/devices/system/cpu/present").read_text() == "0-3\n"
    root = tmp_path / "root"
    for name in ("usr", "lib", "tmp"):
        (root / name).mkdir(parents=True)
    view = cpu_view(root, "max", tmp_path / "view")
    assert (view / "usr").is_symlink() and (view / "lib").resolve() == (root / "lib").resolve()
    assert not (view / "tmp").exists()  # the host's /tmp (where artifacts are) stays visible to the guest
    assert "CPU implementer\t: 0x00" in (view / "proc" / "cpuinfo").read_text()


def test_qemu_cpu_comes_from_the_argument_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(qemu.CPU_ENV, raising=False)
    assert qemu.qemu_cpu() == "cortex-a76" and qemu.qemu_cpu("max") == "max"
    monkeypatch.setenv(qemu.CPU_ENV, "cortex-a53")
    assert qemu.qemu_cpu() == "cortex-a53" and qemu.qemu_cpu("neoverse-n1") == "neoverse-n1"
    assert get_runner("onnxruntime-arm64").emulation["cpu"] == "cortex-a53"
    monkeypatch.setenv(qemu.CPU_ENV, "cortex-x1")
    with pytest.raises(ValueError, match=r"unknown QEMU CPU model 'cortex-x1' \(from \$VMF_QEMU_CPU\).*cortex-a53"):
        qemu.qemu_cpu()
    with pytest.raises(RunnerError, match="cortex-x1"):
        get_runner("onnxruntime-arm64")
    if qemu_binary() is not None and userland.userland_problem() is None:
        assert arm64_runner.OnnxRuntimeARM64Runner.availability().startswith("failed: unknown QEMU CPU model")


def test_missing_qemu_or_userland_is_a_skip_that_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    monkeypatch.setenv(userland.CACHE_ENV, str(tmp_path / "cache"))
    reason = arm64_runner.OnnxRuntimeARM64Runner.availability()
    assert reason.startswith("skipped: ")
    if qemu_binary() is not None:
        assert f"aarch64 userland is not built ({tmp_path / 'cache' / 'arm64-userland'})" in reason
        assert "python -m vmf_deploy.arm64.userland" in reason
        with pytest.raises(BackendUnavailable, match="not built"):
            get_runner("onnxruntime-arm64").load(tmp_path / "m.onnx")
    monkeypatch.setattr(arm64_runner, "qemu_binary", lambda: None)
    assert arm64_runner.OnnxRuntimeARM64Runner.availability() == (
        "skipped: qemu-aarch64-static not found: install it with apt-get install -y qemu-user-static debootstrap")
    monkeypatch.setattr(userland.shutil, "which", lambda _: None)
    monkeypatch.setattr(userland.os, "access", lambda *_: False)
    with pytest.raises(UserlandError, match="debootstrap not found: install it with apt-get install -y "
                                            "qemu-user-static debootstrap"):
        userland.check_tools()


def _fake_steps(monkeypatch: pytest.MonkeyPatch, calls: list[str], fail_at: str | None = None) -> None:
    """Replace the network and qemu steps of the userland build with ones that write a marker file."""
    def step(name: str, make_python: bool = False):  # noqa: ANN202
        def run(tmp: Path, *_: object) -> list[str]:
            calls.append(name)
            if name == fail_at:
                raise UserlandError(f"{name} failed")
            if make_python:
                (tmp / "usr" / "bin").mkdir(parents=True)
                (tmp / "usr" / "bin" / "python3.11").write_text(f"build {len(calls)}")
            return ["python3_3.11.2-1+b1_arm64"]
        return run

    monkeypatch.setattr(userland, "check_tools", lambda: None)
    monkeypatch.setattr(userland, "_debootstrap_step", step("debootstrap", make_python=True))
    monkeypatch.setattr(userland, "_unpack_debs", step("dpkg"))
    monkeypatch.setattr(userland, "_install_wheels", step("pip"))
    monkeypatch.setattr(userland, "_smoke_test", step("import"))


def test_userland_is_reused_rebuilt_when_its_inputs_change_and_replaced_atomically(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "arm64-userland"
    calls: list[str] = []
    _fake_steps(monkeypatch, calls)
    assert build_userland(root, progress=lambda _: None) == root
    stamp = read_stamp(root)
    assert stamp["inputs"] == build_inputs() and stamp["debian_packages"] == ["python3_3.11.2-1+b1_arm64"]
    assert (root / "proc" / "cpuinfo").is_file() and calls == ["debootstrap", "dpkg", "pip", "import"]
    build_userland(root, progress=lambda _: None)
    assert len(calls) == 4  # current: reused
    monkeypatch.setitem(userland.WHEELS, "numpy", ("2.4.7", "0" * 64))
    assert "built from other inputs" in userland.userland_problem(root)
    build_userland(root, progress=lambda _: None)
    assert len(calls) == 8 and read_stamp(root)["inputs"]["wheels"]["numpy"]["version"] == "2.4.7"
    before = (root / STAMP_NAME).read_text()
    _fake_steps(monkeypatch, calls, fail_at="pip")
    with pytest.raises(UserlandError, match="pip failed"):
        build_userland(root, force=True, progress=lambda _: None)
    assert (root / STAMP_NAME).read_text() == before  # a failed rebuild leaves the old userland in place
    assert sorted(p.name for p in tmp_path.iterdir()) == [".arm64-userland.lock", "arm64-userland",
                                                          "arm64-userland.build.log"]


def test_the_arm_onnxruntime_is_the_release_the_host_pins() -> None:
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["export"]
    assert f"onnxruntime=={userland.WHEELS['onnxruntime'][0]}" in pins


# ----- under qemu ----------------------------------------------------------------------------------

def test_userland_is_cached_with_its_stamp(arm64_userland: Path) -> None:
    stamp = read_stamp(arm64_userland)
    assert stamp["inputs"] == build_inputs() and any(p.startswith("python3.11_") for p in stamp["debian_packages"])
    assert (arm64_userland / "proc" / "cpuinfo").is_file()
    assert build_userland(progress=lambda _: None) == arm64_userland and read_stamp(arm64_userland) == stamp


def test_a_tampered_onnx_is_refused_before_the_aarch64_server_starts(shared_export, arm64_userland: Path,
                                                                      tmp_path: Path) -> None:
    result = shared_export("560m", "onnx")
    tampered = tmp_path / result.artifact.name
    data = bytearray(result.artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    manifest_path(tampered).write_text(manifest_path(result.artifact).read_text())
    runner = get_runner("onnxruntime-arm64")
    with pytest.raises(RunnerError, match=r"does not match its manifest \(sha256 .* re-export it"):
        runner.load(tampered)
    assert runner.process is None and runner.workdir is None


def test_560m_onnx_passes_the_fp32_parity_gate_on_arm64(shared_export, arm64_userland: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from vmf_deploy.export.parity_gate import run_gate
    from vmf_deploy.export.pipeline import load_model
    from vmf_deploy.export.recipes import load_recipe
    from vmf_deploy.export.targets import get_target

    monkeypatch.delenv(qemu.CPU_ENV, raising=False)
    result = shared_export("560m", "onnx")
    recipe = load_recipe(get_target("onnx"))
    reference = load_model("560m", None, 16)
    # the recipe's noise clips only (3, not 3 + 6 synthetic): each clip costs ~5 s under emulation
    gate = run_gate(reference, result.artifact, "onnxruntime-arm64", recipe.seeds, recipe.tolerance("fp32"),
                    recipe.tolerance_key("fp32"), tuple(reference.cfg.input_shape), synthetic_clips=0)
    assert gate.record["runtime"] == "onnxruntime 1.32.0 aarch64 CPU under qemu-aarch64-static (cortex-a76)"
    assert gate.report.clips == len(recipe.seeds) and gate.report.top1_agreement == 1.0
    print(f"arm64 cortex-a76 gate: {gate.report.to_dict()}; x86: {result.manifest['parity']['metrics']}")


def test_vmf_bench_row_has_parity_and_the_emulated_cpu_and_no_time(shared_export, arm64_userland: Path,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from vmf_deploy.bench.harness import BenchSettings, build_document, run_matrix
    from vmf_deploy.bench.machine import host_device_info
    from vmf_deploy.cli.bench import COLUMNS, table_row

    monkeypatch.setenv(qemu.CPU_ENV, "cortex-a53")  # the worker process inherits it
    artifact = shared_export("560m", "onnx").artifact
    settings = BenchSettings(threads=2, warmup=2, runs=10, frames=16, parity_seeds=(0,))
    (row,) = run_matrix(["onnxruntime-arm64"], ["560m"], settings, tmp_path / "work", artifacts=[artifact])
    assert row["status"] == "ok", row["status"]
    assert row["latency"] == "not measured: emulated" and row["emulation"]["cpu"] == "cortex-a53"
    assert all(row[k] is None for k in ("load_ms", "latency_ms", "clips_per_s", "gflops_per_s", "memory"))
    assert row["parity"]["clips"] == 1 and row["parity"]["top1_agreement"] == 1.0
    assert row["parity"]["max_rel_error"] < 1e-4 and row["artifact"]["format"] == "onnx"
    doc = build_document([row], settings, host_device_info())
    assert {"parity_max_rel_error", "parity_top1_agreement"} <= {r["metric"] for r in doc["records"]}
    assert not any("latency" in r["metric"] or "load" in r["metric"] for r in doc["records"])
    assert table_row(row)[COLUMNS.index("median ms")] == "emulated"
    from vmf_deploy.bench.schema import BenchSchemaError, validate

    bad = json.loads(json.dumps(doc))
    bad["results"][0]["load_ms"] = 1.0
    with pytest.raises(BenchSchemaError, match="carries timings"):
        validate(bad)


def test_vmf_val_runs_the_trained_fixture_on_arm64(trained_checkpoint: Path, trained_export,
                                                   arm64_userland: Path) -> None:
    from vmf_deploy.validate import parse_artifact, validate

    artifact = trained_export("onnx").artifact
    path, backend = parse_artifact(f"{artifact}@onnxruntime-arm64")
    report = validate(trained_checkpoint, [(path, backend)], "synthetic", clips=12)
    row = report.summary(report.rows[1])
    assert row["backend"] == "onnxruntime-arm64" and row["clips"] == 12
    assert row["top1_agreement"] == 1.0 and row["max_rel_error"] < 1e-4 and row["top1"] == report.summary(
        report.rows[0])["top1"]


@pytest.mark.slow
def test_midr_table_is_what_each_emulated_cpu_reports(arm64_userland: Path) -> None:
    read_midr = ("import ctypes, mmap, struct\n"
                 "page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
                 "page.write(struct.pack('<II', 0xd5380000, 0xd65f03c0))  # mrs x0, midr_el1; ret\n"
                 "print(ctypes.CFUNCTYPE(ctypes.c_uint64)(ctypes.addressof(ctypes.c_char.from_buffer(page)))())")
    for cpu, midr in MIDR.items():
        env = {"QEMU_LD_PREFIX": str(arm64_userland), "QEMU_CPU": cpu}
        out = subprocess.run([str(qemu_binary()), str(userland.python_path(arm64_userland)), "-I", "-c", read_midr],
                             capture_output=True, text=True, env=env, check=True).stdout
        assert int(out) == midr, (cpu, hex(int(out)))


def test_parity_clip_through_the_runner_matches_x86_onnxruntime(shared_export, arm64_userland: Path) -> None:
    from vmf_deploy.parity import parity_clips

    artifact = shared_export("560m", "onnx").artifact
    clip = parity_clips((1, 3, 16, 172, 172), [5])[0]
    x86 = get_runner("onnxruntime-cpu")
    x86.load(artifact)
    expected = x86.run(clip)
    arm = get_runner("onnxruntime-arm64", cpu="max", threads=2)
    arm.load(artifact)
    try:
        with pytest.raises(RunnerError, match=r"exported for input \(1, 3, 16, 172, 172\)"):
            arm.run(clip[:, :, :8])
        got = arm.run(clip)
    finally:
        arm.close()
    assert got.shape == expected.shape == (1, 400)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
