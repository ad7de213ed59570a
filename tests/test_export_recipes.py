"""Recipes: the shipped ones load; every invalid key or value fails naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmf_deploy.export.errors import ExportError, exporter_failure, failing_op
from vmf_deploy.export.recipes import DEFAULT_SYNTHETIC_CLIPS, RECIPES_DIR, load_recipe
from vmf_deploy.export.targets import TARGETS, artifact_name, get_target, resolve_targets


@pytest.mark.parametrize("target", list(TARGETS))
def test_shipped_recipes_load(target: str) -> None:
    recipe = load_recipe(get_target(target))
    assert recipe.path == RECIPES_DIR / f"{target}.toml"
    assert recipe.runtime == TARGETS[target].runtime
    assert len(recipe.seeds) >= 3
    assert recipe.synthetic_clips == 6
    tol = recipe.tolerance("fp32")
    assert tol.max_rel_error == 1e-4 and tol.min_top1_agreement == 1.0
    assert tol.min_centered_sqnr_db == 60.0 and tol.max_spread_rel_error == 2e-3
    assert all(t.min_centered_sqnr_db is not None for t in recipe.tolerances.values())


def test_coreml_recipe_has_an_fp16_tolerance_and_keeps_bridges_fp32() -> None:
    recipe = load_recipe(get_target("coreml"))
    fp16, fp32 = recipe.tolerance("fp16"), recipe.tolerance("fp32")
    assert fp16.max_rel_error > fp32.max_rel_error
    assert fp16.min_centered_sqnr_db < fp32.min_centered_sqnr_db
    assert fp16.max_spread_rel_error > fp32.max_spread_rel_error
    assert set(recipe.options["fp32_modules"]) == {"MobileToFormer", "FormerToMobile"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return path


ONNX_OK = """
target = "onnx"
[onnx]
opset = 18
simplify = true
check = true
bridges = "channels-first"
[parity]
runtime = "onnxruntime-cpu"
seeds = [0, 1, 2]
[parity.tolerance.fp32]
max_rel_error = 1e-4
min_top1_agreement = 1.0
"""


@pytest.mark.parametrize("old, new, key", [
    ('target = "onnx"', 'target = "coreml"', "target"),
    ("opset = 18", "opset = 13", "[onnx].opset"),
    ("opset = 18", 'opset = "18"', "[onnx].opset"),
    ("simplify = true", "simplify = 1", "[onnx].simplify"),
    ("check = true", "check = true\nfast = true", "[onnx].fast"),
    ("opset = 18\n", "", "lacks ['opset']"),
    ('bridges = "channels-first"', 'bridges = "sdpa"', "[onnx].bridges"),
    ('runtime = "onnxruntime-cpu"', 'runtime = "tflite"', "[parity].runtime"),
    ("seeds = [0, 1, 2]", "seeds = [0, 1]", "[parity].seeds"),
    ("seeds = [0, 1, 2]", "seeds = [0, 0, 1]", "[parity].seeds"),
    ("max_rel_error = 1e-4", "max_rel_error = -1", "[parity.tolerance.fp32].max_rel_error"),
    ("min_top1_agreement = 1.0", "min_top1_agreement = 1.5", "[parity.tolerance.fp32].min_top1_agreement"),
    ("min_top1_agreement = 1.0", "min_top5 = 1.0", "[parity.tolerance.fp32].min_top5"),
    ("max_rel_error = 1e-4", 'max_rel_error = 1e-4\nmin_centered_sqnr_db = "40"',
     "[parity.tolerance.fp32].min_centered_sqnr_db"),
    ("max_rel_error = 1e-4", "max_rel_error = 1e-4\nmin_centered_sqnr_db = 1e9",
     "[parity.tolerance.fp32].min_centered_sqnr_db"),
    ("max_rel_error = 1e-4", "max_rel_error = 1e-4\nmin_centered_sqnr_db = nan",
     "[parity.tolerance.fp32].min_centered_sqnr_db"),
    ("max_rel_error = 1e-4", "max_rel_error = 1e-4\nmin_centered_sqnr_db = true",
     "[parity.tolerance.fp32].min_centered_sqnr_db"),
    ("max_rel_error = 1e-4", "max_rel_error = 1e-4\nmax_spread_rel_error = -0.1",
     "[parity.tolerance.fp32].max_spread_rel_error"),
    ("max_rel_error = 1e-4", "max_rel_error = 1e-4\nmax_spread_rel_error = inf",
     "[parity.tolerance.fp32].max_spread_rel_error"),
    ("seeds = [0, 1, 2]", "seeds = [0, 1, 2]\nsynthetic_clips = -1", "[parity].synthetic_clips"),
    ("seeds = [0, 1, 2]", "seeds = [0, 1, 2]\nsynthetic_clips = 2.0", "[parity].synthetic_clips"),
    ("seeds = [0, 1, 2]", "seeds = [0, 1, 2]\nsynthetic_clips = true", "[parity].synthetic_clips"),
    ("[parity.tolerance.fp32]", "[parity.tolerance.fp16]", "[parity.tolerance.fp16]"),
    ('target = "onnx"', 'target = "onnx"\nextra = 1', "['extra']"),
])
def test_invalid_recipe_names_the_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in ONNX_OK
    path = _write(tmp_path, ONNX_OK.replace(old, new, 1))
    with pytest.raises(ExportError) as info:
        load_recipe(get_target("onnx"), path)
    assert key in str(info.value) and str(path) in str(info.value)


def test_valid_custom_recipe_loads(tmp_path: Path) -> None:
    recipe = load_recipe(get_target("onnx"), _write(tmp_path, ONNX_OK.replace("opset = 18", "opset = 20")))
    assert recipe.options["opset"] == 20 and recipe.tolerance("fp32").min_cosine == 0.0
    assert recipe.synthetic_clips == DEFAULT_SYNTHETIC_CLIPS
    tol = recipe.tolerance("fp32")
    assert tol.min_centered_sqnr_db is None and tol.max_spread_rel_error is None  # not checked


@pytest.mark.parametrize("synthetic, sqnr, spread", [(0, -10, 0), (12, 45.5, 0.02), (1, 200, 1)])
def test_spread_tolerances_and_synthetic_clips_load(tmp_path: Path, synthetic: int, sqnr: float,
                                                    spread: float) -> None:
    text = ONNX_OK.replace("seeds = [0, 1, 2]", f"seeds = [0, 1, 2]\nsynthetic_clips = {synthetic}").replace(
        "max_rel_error = 1e-4", f"max_rel_error = 1e-4\nmin_centered_sqnr_db = {sqnr}\nmax_spread_rel_error = {spread}")
    recipe = load_recipe(get_target("onnx"), _write(tmp_path, text))
    assert recipe.synthetic_clips == synthetic
    assert recipe.tolerance("fp32").min_centered_sqnr_db == sqnr
    assert recipe.tolerance("fp32").max_spread_rel_error == spread


def test_bridge_forms_are_the_rewrite_alternatives() -> None:
    from vmf_deploy.export.recipes import ONNX_BRIDGE_FORMS
    from vmf_deploy.rewrites import ALTERNATIVES

    assert ONNX_BRIDGE_FORMS == tuple(ALTERNATIVES["bridges"])  # same values, default first


def test_missing_and_malformed_recipes(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not found: pass an existing file to --recipe"):
        load_recipe(get_target("onnx"), tmp_path / "nope.toml")
    with pytest.raises(ExportError, match="is not valid TOML"):
        load_recipe(get_target("onnx"), _write(tmp_path, "target = [unclosed"))


def test_recipe_without_a_tolerance_for_the_precision(tmp_path: Path) -> None:
    recipe = load_recipe(get_target("onnx"), _write(tmp_path, ONNX_OK))
    with pytest.raises(ExportError, match=r"no \[parity.tolerance.fp16\] table"):
        recipe.tolerance("fp16")


def test_executorch_table_is_validated_at_load(tmp_path: Path) -> None:
    text = (RECIPES_DIR / "executorch.toml").read_text().replace('memory_planning = "greedy"',
                                                                  'memory_planning = "clever"')
    with pytest.raises(ExportError, match=r"\[executorch\].memory_planning"):
        load_recipe(get_target("executorch"), _write(tmp_path, text))


def test_targets_are_data() -> None:
    assert [t.name for t in resolve_targets("all")] == ["onnx", "executorch", "coreml", "openvino"]
    assert artifact_name("1g", 64, TARGETS["coreml"], "fp16") == "1g-64f-fp16.mlpackage"
    assert artifact_name("560m", 16, TARGETS["executorch"], "fp32") == "560m-16f.pte"
    assert artifact_name("x3d-s", 16, TARGETS["openvino"], "fp32") == "x3d-s-16f.xml"
    assert [f.name for f in TARGETS["openvino"].files(Path("560m-16f.xml"))] == ["560m-16f.xml", "560m-16f.bin"]
    with pytest.raises(ExportError, match="unknown target 'tflite'; valid targets: onnx, executorch, coreml, openvino"):
        get_target("tflite")


def test_exporter_failure_names_the_op_and_the_recipe_key() -> None:
    onnx_style = RuntimeError("Failed to convert.\n<class 'DispatchError'>: No ONNX function found for "
                              "<OpOverload(op='vmftest.twist', overload='default')>. Failure message: none")
    assert failing_op(onnx_style) == "vmftest.twist"
    assert failing_op(NotImplementedError("Unsupported fx node twist, kind vmftest::twist")) == "vmftest::twist"
    err = exporter_failure("onnx", onnx_style, "export/onnx.toml [onnx].opset")
    assert "at op vmftest.twist" in str(err) and "export/onnx.toml [onnx].opset" in str(err)
    assert "\n" not in str(err)
