"""vmf-export --set TABLE.KEY=VALUE: one recipe value changed for one export, validated and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vmf_deploy.cli.export import main
from vmf_deploy.export import pipeline
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.recipe_overrides import apply_overrides, parse_override
from vmf_deploy.export.recipes import default_recipe_path, load_recipe, recipe_from_record, recipe_record
from vmf_deploy.export.targets import get_target


@pytest.mark.parametrize("text, path, value", [
    ("quantization.qat_steps=2048", ("quantization", "qat_steps"), 2048),
    ("quantization.qat_learning_rate=3e-6", ("quantization", "qat_learning_rate"), 3e-6),
    ("quantization.fp32_outputs=false", ("quantization", "fp32_outputs"), False),
    ('quantization.fp32_modules=["blocks.0.mobile", "stem"]', ("quantization", "fp32_modules"),
     ["blocks.0.mobile", "stem"]),
    ('quantization.kept_linears="weight_only_int8"', ("quantization", "kept_linears"), "weight_only_int8"),
    ("quantization.kept_linears=weight_only_int8", ("quantization", "kept_linears"), "weight_only_int8"),
    (" parity.tolerance.int8.min_top1_agreement = 0.99 ", ("parity", "tolerance", "int8", "min_top1_agreement"),
     0.99),
])
def test_an_override_is_a_table_path_and_a_toml_value(text: str, path: tuple[str, ...], value: object) -> None:
    override = parse_override(text)
    assert override.path == path and override.value == value and type(override.value) is type(value)


@pytest.mark.parametrize("text, message", [
    ("qat_steps=2048", "is not TABLE.KEY=VALUE"),
    ("quantization.qat_steps", "is not TABLE.KEY=VALUE"),
    ("quantization.qat_steps=", "is not TABLE.KEY=VALUE"),
    ("quantization..qat_steps=1", "is not TABLE.KEY=VALUE"),
    ("quantization.fp32_modules=[stem", "is not a TOML value"),
    ('quantization.kept_linears=weight only', "is not a TOML value"),
])
def test_a_malformed_override_is_refused_with_the_expected_form(text: str, message: str) -> None:
    with pytest.raises(ExportError, match=message) as refused:
        parse_override(text)
    assert "--set" in str(refused.value)


def test_overrides_change_a_copy_and_the_recipe_validates_the_result() -> None:
    target = get_target("executorch")
    recipe = load_recipe(target, None, ["quantization.qat_steps=2048", "quantization.kept_linears=weight_only_int8",
                                        "parity.tolerance.int8.min_top1_agreement=0.99"])
    assert recipe.quantization["qat_steps"] == 2048 and recipe.quantization["kept_linears"] == "weight_only_int8"
    assert recipe.tolerance("int8").min_top1_agreement == 0.99
    assert recipe.overrides == ("quantization.qat_steps=2048", "quantization.kept_linears=weight_only_int8",
                                "parity.tolerance.int8.min_top1_agreement=0.99")
    untouched = load_recipe(target)
    assert untouched.quantization["qat_steps"] == 0 and untouched.overrides == ()
    assert 'kept_linears = "fp32"' in default_recipe_path(target).read_text()

    record = recipe_record(recipe)  # what the manifest keeps, and what numerics rebuilds from
    assert record["file"] == str(default_recipe_path(target)) and record["overrides"] == list(recipe.overrides)
    assert record["quantization"]["qat_steps"] == 2048
    rebuilt = recipe_from_record(json.loads(json.dumps(record)), target)
    assert rebuilt.quantization == recipe.quantization and rebuilt.overrides == recipe.overrides
    assert "overrides" not in recipe_record(untouched)


@pytest.mark.parametrize("target, override, message", [
    ("executorch", "quantization.qat_steps=-1", "[quantization].qat_steps must be an integer"),
    ("executorch", "quantization.qat_step=8", "[quantization].qat_step is not a known key (known: "),
    ("executorch", "executorch.partitioner=7", "[executorch].partitioner must be"),
    ("onnx", "onnx.simplfy=true", "[onnx].simplfy is not a known key (known: opset, "),
    ("onnx", "onnx.opset=12", "[onnx].opset must be an integer"),
    ("onnx", "parity.tolerance.int8.min_top1_agreement=1.5", "min_top1_agreement must be"),
])
def test_an_invalid_override_is_refused_naming_the_set_that_caused_it(target: str, override: str,
                                                                       message: str) -> None:
    with pytest.raises(ExportError) as refused:
        load_recipe(get_target(target), None, [override])
    assert message in str(refused.value) and f"with --set {override}" in str(refused.value)


def test_an_override_into_a_table_the_recipe_lacks_names_its_tables() -> None:
    data = {"target": "onnx", "onnx": {"opset": 18}, "parity": {"tolerance": {"fp32": {"max_rel_error": 1e-4}}}}
    with pytest.raises(ExportError, match=r"has no \[quantization\] table; its tables: onnx, parity, "
                                          r"parity.tolerance, parity.tolerance.fp32"):
        apply_overrides(data, [parse_override("quantization.qat_steps=1")], "r.toml")
    with pytest.raises(ExportError, match=r"\[parity.tolerance\] is a table"):
        apply_overrides(data, [parse_override("parity.tolerance=1")], "r.toml")
    assert data["onnx"] == {"opset": 18} and "quantization" not in data


def test_the_cli_refuses_set_for_every_target_and_malformed_sets_before_exporting(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "export_model", lambda *a, **k: pytest.fail("nothing is exported"))
    assert main(["--variant", "560m", "--target", "all", "--set", "quantization.qat_steps=8",
                 "--out", str(tmp_path)]) == 1
    assert "--set changes the recipe of one target" in capsys.readouterr().err
    assert main(["--variant", "560m", "--target", "onnx", "--set", "qat_steps=8", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vmf-export: error: --set 'qat_steps=8' is not TABLE.KEY=VALUE") and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_an_export_applies_its_overrides_and_the_manifest_records_them(capsys: pytest.CaptureFixture,
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real_build = pipeline.build_seeded_model
    monkeypatch.setattr(pipeline, "build_seeded_model",
                        lambda name, seed=0, **kw: real_build(name, seed, **{**kw, "resolution": 64}))
    code = main(["--variant", "560m", "--target", "onnx", "--frames", "4", "--out", str(tmp_path), "--jobs", "1",
                 "--set", "parity.synthetic_clips=0", "--set", "parity.seeds=[3, 4, 5, 6]"])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "560m-4f.onnx.manifest.json").read_text())
    recipe = manifest["export"]["recipe"]
    assert recipe["overrides"] == ["parity.synthetic_clips=0", "parity.seeds=[3, 4, 5, 6]"]
    assert recipe["parity"]["synthetic_clips"] == 0 and recipe["parity"]["seeds"] == [3, 4, 5, 6]
    assert manifest["parity"]["seeds"] == [3, 4, 5, 6] and manifest["parity"]["metrics"]["clips"] == 4


def test_a_refusal_names_the_overridden_tolerance_where_it_came_from() -> None:
    target = get_target("onnx")
    recipe = load_recipe(target, None, ["parity.tolerance.int8.min_top1_agreement=0.99"])
    assert recipe.tolerance_key("int8") == (f"{default_recipe_path(target)} with --set "
                                            "parity.tolerance.int8.min_top1_agreement=0.99 [parity.tolerance.int8]")
    assert load_recipe(target).tolerance_key("int8") == f"{default_recipe_path(target)} [parity.tolerance.int8]"
