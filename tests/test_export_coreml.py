"""CoreML: every variant converts to a valid ML Program on Linux; the manifest says the runtime check was not run.

The default run converts 560m (fp32 and fp16); the other variants are under ``-m slow``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vmf_deploy.export.coreml_export import NOT_RUN as NOT_RUN_COREML
from vmf_deploy.export.pipeline import export_model
from vmf_deploy.manifest import read_manifest, verify_artifact

pytestmark = pytest.mark.skipif(sys.platform == "darwin", reason="on macOS the CoreML gate runs the model instead")

FRAMES = 16


def _check_mlpackage(result, variant: str, precision: str) -> dict:
    import coremltools as ct

    suffix = "" if precision == "fp32" else f"-{precision}"
    assert result.artifact.name == f"{variant}-{FRAMES}f{suffix}.mlpackage" and result.artifact.is_dir()
    manifest = read_manifest(result.manifest_path)
    verify_artifact(result.artifact, manifest)  # tree hash of the package directory
    assert manifest["parity"]["status"] == NOT_RUN_COREML == "not run: CoreML runtime needs macOS"
    assert manifest["parity"]["metrics"] is None
    assert manifest["artifact"]["precision"] == precision
    assert manifest["export"]["recipe"]["coreml"]["compute_precision"] == precision

    spec = ct.models.MLModel(str(result.artifact), skip_model_load=True).get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    (inp,), (out,) = spec.description.input, spec.description.output
    assert inp.name == "video" and list(inp.type.multiArrayType.shape) == manifest["input"]["shape"]
    assert out.name == "logits" and list(out.type.multiArrayType.shape) == [1, 400]
    ops = manifest["export"]["graph"]["op_types"]
    assert ops["conv"] > 0 and ops["softmax"] > 0 and ops["linear"] > 0
    return manifest


def test_coreml_560m_fp32_is_a_valid_mlpackage_and_force_replaces_a_stale_one(tmp_path: Path) -> None:
    stale = tmp_path / f"560m-{FRAMES}f.mlpackage"
    stale.mkdir()
    (stale / "stale").write_text("old")
    result = export_model("560m", "coreml", tmp_path, frames=FRAMES, force=True)
    manifest = _check_mlpackage(result, "560m", "fp32")
    assert manifest["export"]["graph"]["output_dtypes"].get("fp16", 0) == 0
    assert not (result.artifact / "stale").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging dir or trash left


def test_coreml_560m_fp16_keeps_the_bridges_fp32(tmp_path: Path) -> None:
    result = export_model("560m", "coreml", tmp_path, frames=FRAMES, precision="fp16")
    manifest = _check_mlpackage(result, "560m", "fp16")
    graph = manifest["export"]["graph"]
    assert graph["output_dtypes"]["fp16"] > 0 and graph["ops_kept_fp32"] > 0
    assert manifest["parity"]["tolerance"]["max_rel_error"] == 3e-2  # the recipe's fp16 table
    # the bridges' softmax (8 blocks x 2 + the head's) stays fp32, the Former's (8) goes fp16
    import coremltools as ct

    spec = ct.models.MLModel(str(result.artifact), skip_model_load=True).get_spec()
    softmax = [op.outputs[0].type.tensorType.dataType for f in spec.mlProgram.functions.values()
               for b in f.block_specializations.values() for op in b.operations if op.type == "softmax"]
    assert sorted(softmax).count(11) == 17 and sorted(softmax).count(10) == 8  # MIL FLOAT32 = 11, FLOAT16 = 10


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["1g", "2g", "5g"])
def test_coreml_every_variant_is_a_valid_mlpackage(tmp_path: Path, variant: str) -> None:
    _check_mlpackage(export_model(variant, "coreml", tmp_path, frames=FRAMES), variant, "fp32")
