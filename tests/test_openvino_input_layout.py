"""OpenVINO's channels-last input (export/openvino.toml's ``input_layout``): the IR, the manifest, the runner and
vmf-predict agree on it, the planar IR still exists and computes the same, and the CPU plugin no longer reorders
the clip."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.recipes import default_recipe_path, load_recipe
from vmf_deploy.export.targets import get_target
from vmf_deploy.manifest import ManifestError, read_manifest, validate_manifest
from vmf_deploy.parity import parity_clips
from vmf_deploy.preprocess import to_layout
from vmf_deploy.runners import RunnerError, get_runner, runner_class

pytestmark = pytest.mark.skipif(runner_class("openvino-cpu").availability() is not None,
                                reason="openvino is not installed (pip install 'vmf-deploy[openvino]')")

FRAMES = 16


@pytest.fixture(scope="module")
def ir_560m(shared_export):
    """560m at 16 frames exported to OpenVINO with the default recipe (channels-last input)."""
    return shared_export("560m", "openvino", FRAMES)


@pytest.fixture(scope="module")
def planar_ir(tmp_path_factory: pytest.TempPathFactory):
    """560m at 16 frames exported with ``input_layout = "NCTHW"``."""
    from vmf_deploy.export.pipeline import export_model

    folder = tmp_path_factory.mktemp("planar-ir")
    text = default_recipe_path(get_target("openvino")).read_text()
    assert 'input_layout = "NTHWC"' in text
    recipe = folder / "planar.toml"
    recipe.write_text(text.replace('input_layout = "NTHWC"', 'input_layout = "NCTHW"'))
    return export_model("560m", "openvino", folder, frames=FRAMES, recipe_path=recipe)


def input_reorders(xml: Path, clip: np.ndarray) -> list[str]:
    """The nodes that reorder the model input itself and run (``PERF_COUNT``) when OpenVINO's CPU plugin runs ``xml``.

    A channels-last input keeps a ``..._fake`` Reorder in the compiled graph that never runs: the plugin reads the
    tensor in the layout it is declared in.
    """
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": "YES"})
    request = compiled.create_infer_request()
    request.infer({0: clip})
    return [info.node_name for info in request.profiling_info if info.node_type == "Reorder"
            and info.node_name.startswith("video") and info.status == info.Status.EXECUTED]


def test_the_default_ir_takes_channels_last_clips(ir_560m) -> None:
    import openvino as ov

    manifest = read_manifest(ir_560m.manifest_path)
    assert manifest["input"]["layout"] == manifest["preprocessing"]["layout"] == "NTHWC"
    assert manifest["input"]["shape"] == [1, 3, FRAMES, 172, 172]  # always NCTHW order
    model = ov.Core().read_model(str(ir_560m.artifact))
    assert list(model.input(0).get_shape()) == [1, FRAMES, 172, 172, 3]
    assert model.get_rt_info(["vmf_deploy", "input_layout"]).astype(str) == "NTHWC"
    rewrites = {r["name"] for r in manifest["export"]["rewrites"]}
    assert "input_conv_channel_split" not in rewrites  # it only helps planar input
    clip = np.zeros((1, FRAMES, 172, 172, 3), np.float32)
    assert input_reorders(ir_560m.artifact, clip) == []  # what the layout is for: the clip is read as it comes


def test_the_planar_ir_computes_the_same_and_keeps_the_split(ir_560m, planar_ir) -> None:
    manifest = planar_ir.manifest
    assert manifest["input"]["layout"] == manifest["preprocessing"]["layout"] == "NCTHW"
    assert manifest["parity"]["status"] == "passed"
    assert {r["name"]: r["count"] for r in manifest["export"]["rewrites"]}["input_conv_channel_split"] == 1
    clip = np.zeros((1, 3, FRAMES, 172, 172), np.float32)
    assert input_reorders(planar_ir.artifact, clip) == []  # the split's own way around the reorder
    planar, last = get_runner("openvino-cpu", threads=2), get_runner("openvino-cpu", threads=2)
    planar.load(planar_ir.artifact)
    last.load(ir_560m.artifact)
    assert (planar.input_layout, last.input_layout) == ("NCTHW", "NTHWC")
    try:
        for clip in parity_clips(tuple(manifest["input"]["shape"]), [0, 1]):
            expected = planar.run(clip)
            channels_last = last.run(to_layout(clip, "NTHWC"))
            np.testing.assert_allclose(channels_last, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
            np.testing.assert_array_equal(last.run(clip), channels_last)  # a planar clip is transposed for it
    finally:
        planar.close()
        last.close()


def test_the_runner_refuses_a_clip_of_neither_layout(ir_560m) -> None:
    runner = get_runner("openvino-cpu", threads=1)
    runner.load(ir_560m.artifact)
    try:
        expected = r"takes NTHWC input \[1, 16, 172, 172, 3\] but got \[1, 3, 8, 172, 172\]"
        with pytest.raises(RunnerError, match=expected):
            runner.run(np.zeros((1, 3, 8, 172, 172), np.float32))
        with pytest.raises(RunnerError, match="takes NTHWC input"):
            runner.submit(np.zeros((1, 172, 172, 16, 3), np.float32)).result()
    finally:
        runner.close()


def test_vmf_predict_decodes_clips_in_the_runners_layout(ir_560m, tmp_path: Path) -> None:
    import video_factory as vf

    from vmf_deploy.cli.predict import EXIT_OK, main
    from vmf_deploy.predict import Predictor

    video = vf.write_video(tmp_path / "clip.avi", 24, (200, 150))
    native = Predictor.from_artifact(ir_560m.artifact)
    eager = Predictor.from_artifact(ir_560m.artifact, backend="torch-cpu")
    assert (native.spec.layout, eager.spec.layout) == ("NTHWC", "NCTHW")
    clip, reference_clip = native.read(video), eager.read(video)
    assert clip.input.shape == (1, FRAMES, 172, 172, 3)
    np.testing.assert_array_equal(clip.input, to_layout(reference_clip.input, "NTHWC"))
    native.close()
    eager.close()
    out = tmp_path / "predict.json"
    assert main([str(video), "--artifact", str(ir_560m.artifact), "--json", str(out)]) == EXIT_OK
    assert json.loads(out.read_text())["videos"][0]["ok"]


def test_a_manifest_whose_layouts_disagree_is_refused(ir_560m) -> None:
    manifest = copy.deepcopy(ir_560m.manifest)
    manifest["preprocessing"]["layout"] = "NCTHW"
    with pytest.raises(ManifestError, match="input.layout 'NTHWC' must be one of NCTHW, NTHWC and equal"):
        validate_manifest(manifest)
    manifest["input"]["layout"] = manifest["preprocessing"]["layout"] = "NHWC"
    with pytest.raises(ManifestError, match="re-export the artifact"):
        validate_manifest(manifest)


def test_the_recipe_key_is_validated(tmp_path: Path) -> None:
    text = default_recipe_path(get_target("openvino")).read_text()
    path = tmp_path / "bad.toml"
    path.write_text(text.replace('input_layout = "NTHWC"', 'input_layout = "NHWC"'))
    with pytest.raises(ExportError, match=r"\[openvino\].input_layout must be one of"):
        load_recipe(get_target("openvino"), path)


def test_vmf_bench_times_the_clip_in_the_irs_own_layout(ir_560m, tmp_path: Path, monkeypatch) -> None:
    """The worker converts its clips once, before anything is timed, one at a time (the peak RSS holds no second
    copy of them): the timed runs and the parity runs feed the IR its own layout."""
    from vmf_deploy.bench.worker import measure
    from vmf_deploy.runners.openvino_cpu import OpenVINOCPURunner

    clip_file = tmp_path / "clip.npy"
    np.save(clip_file, parity_clips(tuple(ir_560m.manifest["input"]["shape"]), [0])[0])
    fed: list[tuple[int, ...]] = []
    feed = OpenVINOCPURunner.feed
    monkeypatch.setattr(OpenVINOCPURunner, "feed", lambda self, clip: (fed.append(clip.shape), feed(self, clip))[1])
    out = measure({"backend": "openvino-cpu", "threads": 1, "warmup": 1, "runs": 2, "artifact": str(ir_560m.artifact),
                   "model": None, "clips": [str(clip_file)], "profile": False, "profile_dir": str(tmp_path)})
    assert len(out["samples_ms"]) == 2 and len(out["logits"]) == 1
    assert fed == [(1, FRAMES, 172, 172, 3)] * 4
