"""OpenVINO: 560m and x3d-s export to an IR that passes the gate in OpenVINO CPU; a modified ``.bin`` or a
wrong graph is refused; vmf-bench and vmf-predict run the IR through the backends table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vmf_deploy.export import parity_gate
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.pipeline import load_model
from vmf_deploy.export.recipes import load_recipe
from vmf_deploy.export.targets import get_target
from vmf_deploy.manifest import ManifestError, files_sha256, manifest_path, read_manifest, verify_artifact
from vmf_deploy.runners import BackendUnavailable, RunnerError, get_runner, runner_class

pytestmark = pytest.mark.skipif(runner_class("openvino-cpu").availability() is not None,
                                reason="openvino is not installed (pip install 'vmf-deploy[openvino]')")

FRAMES = 16


@pytest.fixture(scope="module")
def ir_560m(shared_export):
    """560m at 16 frames exported to OpenVINO by the pipeline (shared with the other tests of the session)."""
    return shared_export("560m", "openvino", FRAMES)


def private_copy(result, folder: Path) -> Path:
    """The IR, its .bin, manifest and labels copied into ``folder`` (safe to damage); the copied .xml."""
    src = result.artifact
    for f in (src, src.with_suffix(".bin"), manifest_path(src), src.parent / "kinetics400_labels.txt"):
        shutil.copy(f, folder / f.name)
    return folder / src.name


@pytest.mark.parametrize("variant", ["560m", "x3d-s"])
def test_export_passes_the_gate_in_openvino_cpu(shared_export, variant: str) -> None:
    import openvino as ov

    result = shared_export(variant, "openvino", FRAMES)
    manifest = read_manifest(result.manifest_path)
    xml, binary = result.artifact, result.artifact.with_suffix(".bin")
    assert xml.name == f"{variant}-{FRAMES}f.xml" and binary.is_file()
    artifact = manifest["artifact"]
    assert artifact["target"] == "openvino" and artifact["format"] == "openvino-ir"
    assert set(artifact["files"]) == {xml.name, binary.name}
    assert artifact["sha256"] == files_sha256(artifact["files"])
    assert artifact["size_bytes"] == xml.stat().st_size + binary.stat().st_size
    verify_artifact(xml, manifest)
    parity = manifest["parity"]
    assert parity["status"] == "passed" and parity["runtime"].startswith("OpenVINO 2026.4.1")
    assert parity["runtime"].endswith(" CPU")
    assert parity["metrics"]["centered_sqnr_db"] >= 60.0 and parity["metrics"]["top1_agreement"] == 1.0
    assert manifest["export"]["versions"]["openvino"] == "2026.4.1"
    assert manifest["export"]["graph"]["op_types"]["Parameter"] == 1
    fused = {r["name"]: r["count"] for r in manifest["export"]["rewrites"]}  # measured faster in OpenVINO
    vmf = variant == "560m"  # X3D has no VMF stem and no bridges
    assert fused == {"stem_conv_fusion": int(vmf), "bridge_position_major": 17 if vmf else 0}  # channels-last input:
    assert manifest["input"]["layout"] == "NTHWC"  # no input_conv_channel_split (tests/test_openvino_input_layout.py)
    saved = ov.Core().read_model(str(xml)).get_rt_info(["vmf_deploy", "compile_options"]).astype(dict)
    assert {k: v.astype(str) for k, v in saved.items()} == {
        "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
    assert not list(result.artifact.parent.glob(".vmf-export-*"))  # no temp dir left behind


def test_a_modified_bin_is_refused_by_the_runner(ir_560m, tmp_path: Path) -> None:
    xml = private_copy(ir_560m, tmp_path)
    runner = get_runner("openvino-cpu", threads=1)
    runner.load(xml)  # the untampered copy loads
    runner.close()
    binary = xml.with_suffix(".bin")
    data = bytearray(binary.read_bytes())
    data[len(data) // 2] ^= 0xFF
    binary.write_bytes(bytes(data))
    with pytest.raises(RunnerError, match=r"560m-16f\.bin does not match its manifest \(sha256"):
        get_runner("openvino-cpu").load(xml)
    with pytest.raises(ManifestError, match=r"\.bin does not match"):
        verify_artifact(xml, read_manifest(manifest_path(xml)))
    binary.unlink()
    with pytest.raises(RunnerError, match=r"560m-16f\.bin not found: it belongs to 560m-16f\.xml"):
        get_runner("openvino-cpu").load(xml)


def test_the_runner_checks_the_manifest_without_importing_torch(ir_560m) -> None:
    """The sha256 check used to import torch (via vmf_deploy.checkpoint): 183 MB of the runner's peak RSS."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from vmf_deploy.runners import get_runner; "
            f"r = get_runner('openvino-cpu', threads=1); r.load(Path({str(ir_560m.artifact)!r})); "
            "print(sorted(m for m in ('torch', 'onnx', 'executorch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def frames_reversed(xml: Path, out: Path) -> Path:
    """A copy of the IR whose graph reads its input's frames last to first (a Gather in front of every reader)."""
    import openvino as ov
    import openvino.opset13 as ops

    model = ov.Core().read_model(str(xml))
    video = model.get_parameters()[0]
    readers = list(video.output(0).get_target_inputs())
    frames = video.get_partial_shape()[2].get_length()
    reread = ops.gather(video, ops.constant(np.arange(frames)[::-1].astype(np.int64)), ops.constant(np.int64(2)))
    for reader in readers:
        reader.replace_source_output(reread.output(0))
    ov.save_model(model, str(out))
    return out


def test_the_gate_refuses_a_wrong_ir(ir_560m, tmp_path: Path) -> None:
    recipe = load_recipe(get_target("openvino"))
    wrong = frames_reversed(ir_560m.artifact, tmp_path / "time-reversed.xml")
    reference = load_model("560m", None, FRAMES)
    shape = tuple(ir_560m.manifest["input"]["shape"])
    with pytest.raises(ExportError, match="parity gate refused") as info:
        parity_gate.run_gate(reference, wrong, recipe.runtime, recipe.seeds, recipe.tolerance("fp32"),
                             recipe.tolerance_key("fp32"), shape, recipe.synthetic_clips)
    assert "centered SQNR" in str(info.value)


def test_vmf_bench_gives_an_openvino_row_with_parity(ir_560m, tmp_path: Path, capsys) -> None:
    from vmf_deploy.cli.bench import main

    out = tmp_path / "bench.json"
    code = main(["--backend", "openvino-cpu", "--variant", "560m", "--frames", str(FRAMES), "--runs", "2",
                 "--artifact", str(ir_560m.artifact), "--json", str(out), "--plot", str(tmp_path / "b.png")])
    assert code == 0, capsys.readouterr().out
    (row,) = json.loads(out.read_text())["results"]
    assert row["backend"] == "openvino-cpu" and row["status"] == "ok", row["status"]
    assert row["parity"]["top1_agreement"] == 1.0 and row["parity"]["max_rel_error"] < 1e-4
    assert row["artifact"]["size_bytes"] == ir_560m.manifest["artifact"]["size_bytes"]
    assert len(row["latency_ms"]["samples"]) == 2


def test_vmf_predict_picks_openvino_for_an_xml(ir_560m, tmp_path: Path) -> None:
    import video_factory as vf

    from vmf_deploy.cli.predict import EXIT_OK, main

    video = vf.write_video(tmp_path / "clip.avi", 40, (200, 150))
    runs = {}
    for backend in ("openvino-cpu", "torch-cpu"):
        out = tmp_path / f"{backend}.json"
        argv = [str(video), "--artifact", str(ir_560m.artifact), "--json", str(out)]
        assert main(argv + (["--backend", backend] if backend == "torch-cpu" else [])) == EXIT_OK
        runs[backend] = json.loads(out.read_text())
    assert runs["openvino-cpu"]["model"]["backend"] == "openvino-cpu"  # chosen from the .xml suffix
    got, ref = (np.array(runs[b]["videos"][0]["logits"]) for b in ("openvino-cpu", "torch-cpu"))
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


def test_throughput_hint_queues_clips_and_predicts_what_latency_does(ir_560m, tmp_path: Path) -> None:
    """vmf-predict over several videos compiles the IR with the THROUGHPUT hint and feeds an AsyncInferQueue of
    the plugin's optimal size; the predictions equal the latency-first ones, in input order, errors included."""
    import video_factory as vf

    from vmf_deploy.cli.predict import EXIT_VIDEO_FAILED, main

    videos = [str(vf.write_video(tmp_path / f"v{i}.avi", 20 + 4 * i, (160, 120))) for i in range(4)]
    (tmp_path / "v9_fake.mp4").write_text("not a video")
    videos.insert(2, str(tmp_path / "v9_fake.mp4"))
    runs = {}
    for hint in ("latency", "auto"):
        out = tmp_path / f"{hint}.json"
        assert main([*videos, "--artifact", str(ir_560m.artifact), "--hint", hint, "--json", str(out)]) \
            == EXIT_VIDEO_FAILED
        runs[hint] = json.loads(out.read_text())
    assert runs["latency"]["model"]["in_flight"] == 1
    queued = get_runner("openvino-cpu")
    queued.throughput = True
    queued.load(ir_560m.artifact)
    try:
        assert str(queued.compiled.get_property("PERFORMANCE_HINT")) == "THROUGHPUT"
        assert queued.in_flight == queued.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") >= 1
        assert runs["auto"]["model"]["in_flight"] == queued.in_flight  # several videos: throughput
    finally:
        queued.close()
    for latency, auto, video in zip(runs["latency"]["videos"], runs["auto"]["videos"], videos):
        assert latency["video"] == auto["video"] == video and latency["ok"] == auto["ok"]
        if latency["ok"]:
            assert [t["index"] for t in auto["top"]] == [t["index"] for t in latency["top"]]
            np.testing.assert_allclose(auto["logits"], latency["logits"], rtol=1e-4, atol=1e-5)
    assert [v["ok"] for v in runs["auto"]["videos"]] == [True, True, False, True, True]


def test_openvino_gpu_reports_why_it_cannot_run() -> None:
    import openvino as ov

    if any(d.startswith("GPU") for d in ov.Core().available_devices):
        pytest.skip("this machine has an OpenVINO GPU device")
    reason = runner_class("openvino-gpu").availability()
    assert reason.startswith("skipped: no OpenVINO GPU device (available: CPU")
    with pytest.raises(BackendUnavailable, match="no OpenVINO GPU device"):
        get_runner("openvino-gpu").load(Path("unused.xml"))


@pytest.mark.parametrize("edit, message", [
    (('performance_hint = "LATENCY"', 'performance_hint = "FAST"'), "[openvino].performance_hint must be one of"),
    (("num_streams = 1", "num_streams = 0"), "[openvino].num_streams must be an integer from 1 to 64"),
    (('precision_hint = "f32"\n', ""), "[openvino] lacks ['precision_hint']"),
])
def test_recipe_keys_are_validated(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    from vmf_deploy.export.recipes import default_recipe_path

    text = default_recipe_path(get_target("openvino")).read_text()
    assert edit[0] in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(edit[0], edit[1]))
    with pytest.raises(ExportError) as info:
        load_recipe(get_target("openvino"), path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_vmf_bench_profile_aggregates_openvino_perf_counts(tmp_path: Path) -> None:
    import openvino as ov
    import torch

    from vmf_deploy.bench.profile import profile_runner

    model = torch.nn.Sequential(torch.nn.Conv3d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool3d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()
    xml = tmp_path / "tiny.xml"
    ov.save_model(ov.convert_model(torch.export.export(model, (torch.zeros(1, 3, 4, 16, 16),))), str(xml))
    runner = get_runner("openvino-cpu", threads=1)
    runner.load(xml)
    prof = profile_runner(runner, np.zeros((1, 3, 4, 16, 16), np.float32), 3, tmp_path / "prof", xml)
    runner.close()
    ops = {row["op"]: row for row in prof["ops"]}
    assert prof["source"].startswith("OpenVINO 2026.4.1 PERF_COUNT (CPU)")
    assert "Convolution" in ops and ops["Convolution"]["calls"] == 1 and ops["Convolution"]["total_ms"] > 0
    assert sum(row["share"] for row in prof["ops"]) == pytest.approx(1.0)
    per_type: dict[str, float] = {}
    for node in json.loads(Path(prof["file"]).read_text()):  # every executed node of the 3 timed runs
        per_type[node["type"]] = per_type.get(node["type"], 0.0) + node["us"]
    assert set(per_type) == set(ops)
    assert all(ops[op]["total_ms"] == pytest.approx(us / 1e3 / 3) for op, us in per_type.items())
