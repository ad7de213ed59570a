"""benchmarks/int8_sensitivity.py: the recipe and the override it exports each row with, and its row names."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark

from vmf_deploy.export.recipes import load_recipe
from vmf_deploy.export.targets import get_target


@pytest.fixture(scope="module")
def script():
    return load_benchmark("int8_sensitivity")


@pytest.mark.parametrize("target", ["onnx", "executorch", "openvino"])
def test_the_override_keeps_the_entry_fp32_and_everything_else(script, target: str) -> None:
    overrides = script.keeping_overrides(target, None, ["blocks.0.mobile.dw", "blocks.1"])
    original, edited = load_recipe(get_target(target)), load_recipe(get_target(target), None, overrides)
    assert edited.quantization["fp32_modules"] == [*original.quantization["fp32_modules"], "blocks.0.mobile.dw",
                                                   "blocks.1"]
    assert {k: v for k, v in edited.quantization.items() if k != "fp32_modules"} == {
        k: v for k, v in original.quantization.items() if k != "fp32_modules"}
    assert edited.tolerance("int8") == original.tolerance("int8")


def test_row_names(script) -> None:
    assert script.label([]) == "(the recipe as it is)"
    assert script.label(["blocks.0.mobile.dw", "blocks.0.mobile.expand"]) == "blocks.0.mobile.dw+blocks.0.mobile.expand"
    assert script.label([f"blocks.{i}.mobile" for i in range(8)]) == "blocks.*.mobile (8)"
    assert script.label([f"blocks.{i}" for i in range(3)]) == "blocks.* (3)"


def test_accept_any_keeps_the_entry_and_accepts_any_int8_output(script, tmp_path: Path, capsys) -> None:
    path = script.recipe_for("executorch", True, tmp_path, None)
    original = load_recipe(get_target("executorch"))
    edited = load_recipe(get_target("executorch"), path, script.keeping_overrides("executorch", None,
                                                                                 ["blocks.0.mobile"]))
    assert edited.quantization["fp32_modules"] == [*original.quantization["fp32_modules"], "blocks.0.mobile"]
    assert edited.tolerance("int8").min_top1_agreement == 0.0
    assert edited.tolerance("int8").max_rel_error > 1e6
    assert edited.tolerance("fp32") == original.tolerance("fp32")
    with pytest.raises(SystemExit):
        script.main(["--checkpoint", "run.safetensors", "--modules", "blocks.0.mobile", "--accept-any",
                     "--recipe", str(path)])
    assert "--accept-any edits the target's own recipe" in capsys.readouterr().err
