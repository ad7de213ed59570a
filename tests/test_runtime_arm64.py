"""ARM64: runtimes/ cross-built for aarch64, its C++ tests and vmf-export's .pte run under qemu-aarch64-static.

The ARM kernels (XNNPACK's and the optimized ops' NEON paths, the code a phone runs) against
PyTorch and against the same artifact on x86, the sha256 refusal of a tampered .pte, and the
vmf-bench row of an emulated backend (parity and CPU model, no latency).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vmf_deploy.bench import schema
from vmf_deploy.bench.harness import BenchSettings, Harness, Reference, build_document
from vmf_deploy.cross_build import ctest_command, qemu_env
from vmf_deploy.manifest import manifest_path
from vmf_deploy.parity import ParityTolerance, compare_logits, parity_clips
from vmf_deploy.runners import RunnerError, get_runner
from vmf_deploy.runners.executorch_native_arm64 import ExecuTorchNativeARM64Runner

EM_AARCH64 = 183  # ELF e_machine of aarch64


def test_ctest_of_the_aarch64_build_passes_under_qemu(aarch64_build_dir: Path) -> None:
    binary = (aarch64_build_dir / "vmf_run").read_bytes()[:20]
    assert binary[:4] == b"\x7fELF" and int.from_bytes(binary[18:20], "little") == EM_AARCH64
    proc = subprocess.run(ctest_command(aarch64_build_dir), capture_output=True, text=True, timeout=600,
                          env=qemu_env(), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "100% tests passed" in proc.stdout and "TensorIo.NpyRoundTripsShapeAndValues" in proc.stdout


def test_560m_pte_on_arm64_matches_pytorch_and_x86(aarch64_build_dir: Path, shared_export) -> None:
    """vmf-export's 560m 16-frame .pte on the emulated Cortex-A76, through the parity gate's runner path."""
    import torch

    from vmf_deploy import build_seeded_model
    from vmf_deploy.export.parity_gate import run_artifact

    result = shared_export("560m", "executorch")
    shape = tuple(result.manifest["input"]["shape"])
    clips = parity_clips(shape, [0, 1, 2])
    arm = run_artifact("executorch-native-arm64", result.artifact, clips)
    x86 = run_artifact("executorch-xnnpack", result.artifact, clips)
    model = build_seeded_model("560m", frames=shape[2]).eval()
    with torch.inference_mode():
        reference = [model(torch.from_numpy(c)).numpy() for c in clips]
    tolerance = ParityTolerance(**result.manifest["parity"]["tolerance"])
    assert compare_logits(reference, arm).failures(tolerance) == []
    assert compare_logits(x86, arm).max_rel_error <= 1e-5  # ARM NEON vs x86 AVX2 kernels: rounding only


def test_tampered_pte_is_refused_on_arm64(aarch64_build_dir: Path, shared_export, tmp_path: Path) -> None:
    artifact = shared_export("560m", "executorch").artifact
    tampered = tmp_path / artifact.name
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    shutil.copy(manifest_path(artifact), manifest_path(tampered))
    runner = get_runner("executorch-native-arm64")
    with pytest.raises(RunnerError, match="does not match its manifest"):
        runner.load(tampered)


def test_arm64_runner_says_why_it_cannot_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VMF_RUN_AARCH64", str(tmp_path / "missing" / "vmf_run"))
    reason = ExecuTorchNativeARM64Runner.availability()
    assert reason is not None and reason.startswith("skipped: aarch64 native runtime not built")
    assert "--arch aarch64" in reason
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert ExecuTorchNativeARM64Runner.availability() == ("skipped: qemu-aarch64-static (apt-get install "
                                                          "qemu-user-static) is not installed")


def test_qemu_cpu_is_a_phone_core_unless_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VMF_QEMU_CPU", raising=False)
    monkeypatch.delenv("QEMU_CPU", raising=False)
    assert ExecuTorchNativeARM64Runner().emulation == {"emulator": "qemu-aarch64-static", "arch": "aarch64",
                                                       "cpu": "cortex-a76"}
    monkeypatch.setenv("VMF_QEMU_CPU", "cortex-a53")
    assert ExecuTorchNativeARM64Runner().child_env()["QEMU_CPU"] == "cortex-a53"
    assert ExecuTorchNativeARM64Runner(qemu_cpu="max").emulation["cpu"] == "max"


def emulated_result(tmp_path: Path) -> dict:
    """A vmf-bench result as the harness makes it from an emulated worker's output."""
    rng = np.random.default_rng(0)
    logits = [rng.standard_normal((1, 400)).astype(np.float32) for _ in range(3)]
    harness = Harness(BenchSettings(threads=2), tmp_path)
    ref = Reference("560m", {}, (1, 3, 16, 172, 172), 1, 1, None, (0, 1, 2), [], logits)
    out = {"load_ms": 900.0, "samples_ms": [], "logits": [x.tolist() for x in logits], "memory": None,
           "emulation": {"emulator": "qemu-aarch64-static", "arch": "aarch64", "cpu": "cortex-a53"}}
    return harness.result_from("executorch-native-arm64", "560m", ref, None, out)


def test_bench_row_of_an_emulated_backend_has_parity_and_cpu_but_no_latency(tmp_path: Path) -> None:
    from vmf_deploy.bench.machine import host_device_info
    from vmf_deploy.cli.bench import COLUMNS, table_row

    result = emulated_result(tmp_path)
    doc = build_document([result], BenchSettings(threads=2), host_device_info())
    row = doc["results"][0]
    assert row["status"] == "ok" and row["latency"] == "not measured: emulated"
    assert row["emulation"]["cpu"] == "cortex-a53" and row["parity"]["max_rel_error"] == 0.0
    assert row["latency_ms"] is row["load_ms"] is row["clips_per_s"] is row["memory"] is None
    assert {rec["metric"] for rec in doc["records"]} >= {"parity_max_rel_error", "parity_top1_agreement"}
    assert not any("latency" in rec["metric"] or "load" in rec["metric"] for rec in doc["records"])
    assert table_row(row)[COLUMNS.index("median ms")] == "emulated"


def test_schema_refuses_a_millisecond_from_emulation(tmp_path: Path) -> None:
    from vmf_deploy.bench.machine import host_device_info

    result = emulated_result(tmp_path) | {"load_ms": 900.0}
    with pytest.raises(schema.BenchSchemaError, match="carries timings"):
        build_document([result], BenchSettings(threads=2), host_device_info())
    result = emulated_result(tmp_path)
    del result["emulation"]
    with pytest.raises(schema.BenchSchemaError, match="names its emulation"):
        build_document([result], BenchSettings(threads=2), host_device_info())


def test_arm64_backend_is_accepted_by_vmf_val_and_as_the_gates_runtime(tmp_path: Path) -> None:
    from vmf_deploy.export.parity_gate import runtime_description
    from vmf_deploy.export.recipes import default_recipe_path, load_recipe
    from vmf_deploy.export.targets import get_target
    from vmf_deploy.validate import parse_artifact

    assert parse_artifact("out/560m-16f.pte@executorch-native-arm64") == (Path("out/560m-16f.pte"),
                                                                           "executorch-native-arm64")
    assert "aarch64 under qemu" in runtime_description("executorch-native-arm64")
    recipe_text = default_recipe_path(get_target("executorch")).read_text()
    edited = recipe_text.replace('runtime = "executorch-xnnpack"', 'runtime = "executorch-native-arm64"')
    assert edited != recipe_text
    (tmp_path / "arm.toml").write_text(edited)
    assert load_recipe(get_target("executorch"), tmp_path / "arm.toml").runtime == "executorch-native-arm64"
