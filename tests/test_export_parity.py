"""CI parity tests: every VMF variant exported to ONNX and ExecuTorch at 16 frames passes the gate.

Each export runs once per module (module-scoped fixture) and is shared by the gate,
manifest and delegation checks. A deliberately broken artifact must be refused and
leave nothing behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vmf_deploy.export import onnx_export
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.pipeline import export_model
from vmf_deploy.manifest import ManifestError, read_manifest, verify_artifact

VARIANTS = ("560m", "1g", "2g", "5g")
FRAMES = 16
CASES = [pytest.param((v, t), id=f"{v}-{t}") for t in ("onnx", "executorch") for v in VARIANTS]


@pytest.fixture(scope="module", params=CASES)
def exported(request: pytest.FixtureRequest, shared_export):
    variant, target = request.param
    result = shared_export(variant, target, FRAMES)
    return variant, target, result, [name for name, _ in result.steps]


def test_export_passes_parity_gate(exported) -> None:
    variant, target, result, steps = exported
    parity = result.manifest["parity"]
    assert parity["status"] == "passed"
    metrics, tol = parity["metrics"], parity["tolerance"]
    assert metrics["clips"] >= 3 and len(parity["seeds"]) >= 3
    assert metrics["max_rel_error"] <= tol["max_rel_error"] == 1e-4
    assert metrics["top1_agreement"] == 1.0
    assert metrics["min_cosine"] >= tol["min_cosine"]
    assert metrics["centered_sqnr_db"] >= tol["min_centered_sqnr_db"] == 60.0
    assert metrics["max_spread_rel_error"] <= tol["max_spread_rel_error"]
    assert sum(s["count"] for s in parity["clip_sources"]) == metrics["clips"]  # noise + synthetic clips
    assert steps[-1] == "parity" and "save" in steps


def test_manifest_matches_schema_and_artifact(exported) -> None:
    variant, target, result, _ = exported
    manifest = read_manifest(result.manifest_path)
    verify_artifact(result.artifact, manifest)
    assert manifest["artifact"]["file"] == result.artifact.name == f"{variant}-{FRAMES}f{result.artifact.suffix}"
    assert manifest["artifact"]["size_bytes"] == result.artifact.stat().st_size
    assert manifest["input"] == {"name": "video", "shape": list(manifest["input"]["shape"]), "dtype": "float32",
                                 "layout": "NCTHW"}
    assert manifest["input"]["shape"][2] == FRAMES == manifest["preprocessing"]["frames"]
    assert manifest["model"]["config"]["frames"] == FRAMES
    assert manifest["output"]["shape"] == [1, 400] and manifest["output"]["name"] == "logits"
    assert manifest["model"]["source"] == {"kind": "seeded-init", "seed": 0, "checkpoint": None,
                                           "checkpoint_sha256": None}
    assert manifest["model"]["params"] > 4_000_000 and manifest["model"]["flops"] > 0
    labels = result.artifact.parent / manifest["labels"]["file"]
    assert len(labels.read_text().split("\n")) >= manifest["labels"]["count"] == 400
    versions = manifest["export"]["versions"]
    assert versions["torch"].startswith("2.") and versions[{"onnx": "onnx", "executorch": "executorch"}[target]]
    assert manifest["export"]["recipe"]["target"] == target
    assert all(set(r) >= {"name", "count"} for r in manifest["export"]["rewrites"])


def test_tampered_artifact_is_refused_by_its_manifest(exported, tmp_path: Path) -> None:
    _, _, result, _ = exported
    copy = tmp_path / result.artifact.name
    data = bytearray(result.artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="does not match its manifest"):
        verify_artifact(copy, json.loads(result.manifest_path.read_text()))


def test_executorch_delegates_all_compute_to_xnnpack(exported) -> None:
    _, target, result, _ = exported
    if target != "executorch":
        pytest.skip("delegation applies to ExecuTorch only")
    delegation = result.manifest["export"]["delegation"]
    assert delegation["compute_ops_delegated_pct"] == 100.0
    assert delegation["compute_ops"]["portable"] == 0 and delegation["compute_ops"]["delegated"] > 0
    assert delegation["portable_compute_ops"] == []


def test_onnx_graph_is_checked_and_named(exported) -> None:
    _, target, result, _ = exported
    if target != "onnx":
        pytest.skip("ONNX graph checks")
    import onnx

    model = onnx.load(str(result.artifact))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["video"] and [o.name for o in model.graph.output] == ["logits"]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == result.manifest["input"]["shape"]  # static shapes
    assert result.manifest["export"]["graph"]["nodes"] == len(model.graph.node)


def test_broken_artifact_is_refused_and_nothing_is_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Perturb one weight of the exported graph before it is saved: the gate must refuse it."""
    import onnx
    from onnx import numpy_helper

    real_save = onnx_export.save_onnx
    perturbed: list[str] = []

    def save_with_one_wrong_weight(proto: onnx.ModelProto, path: Path) -> None:
        # the largest initializer is the classifier's weight matrix: change one value in it
        init = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
        values = numpy_helper.to_array(init).copy()
        values.flat[0] += 0.5
        init.CopyFrom(numpy_helper.from_array(values, init.name))
        perturbed.append(init.name)
        real_save(proto, path)

    monkeypatch.setattr(onnx_export, "save_onnx", save_with_one_wrong_weight)
    out = tmp_path / "out"
    with pytest.raises(ExportError) as info:
        export_model("560m", "onnx", out, frames=4)
    message = str(info.value)
    assert perturbed and "parity gate refused 560m-4f.onnx" in message
    assert "max relative error" in message and "[parity.tolerance.fp32]" in message
    assert not out.exists()  # created by the export, removed with the staging dir: nothing left
