"""benchmarks/int8_sensitivity.py: the recipe copies it exports with, and its row names."""

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
def test_the_recipe_copy_keeps_the_entry_fp32_and_everything_else(script, target: str, tmp_path: Path) -> None:
    path = script.recipe_keeping(target, None, ["blocks.0.mobile.dw", "blocks.1"], tmp_path)
    original, copy = load_recipe(get_target(target)), load_recipe(get_target(target), path)
    assert copy.quantization["fp32_modules"] == [*original.quantization["fp32_modules"], "blocks.0.mobile.dw",
                                                 "blocks.1"]
    assert {k: v for k, v in copy.quantization.items() if k != "fp32_modules"} == {
        k: v for k, v in original.quantization.items() if k != "fp32_modules"}
    assert copy.tolerance("int8") == original.tolerance("int8")


def test_row_names(script) -> None:
    assert script.label([]) == "(the recipe as it is)"
    assert script.label(["blocks.0.mobile.dw", "blocks.0.mobile.expand"]) == "blocks.0.mobile.dw+blocks.0.mobile.expand"
    assert script.label([f"blocks.{i}.mobile" for i in range(8)]) == "blocks.*.mobile (8)"
    assert script.label([f"blocks.{i}" for i in range(3)]) == "blocks.* (3)"


def test_accept_any_keeps_the_entry_and_accepts_any_int8_output(script, tmp_path: Path) -> None:
    path = script.recipe_keeping("executorch", None, ["blocks.0.mobile"], tmp_path, accept_any=True)
    original, copy = load_recipe(get_target("executorch")), load_recipe(get_target("executorch"), path)
    assert copy.quantization["fp32_modules"] == [*original.quantization["fp32_modules"], "blocks.0.mobile"]
    assert copy.tolerance("int8").min_top1_agreement == 0.0
    assert copy.tolerance("int8").max_rel_error > 1e6
    assert copy.tolerance("fp32") == original.tolerance("fp32")
    with pytest.raises(ValueError, match="pass no source"):
        script.recipe_keeping("executorch", path, ["blocks.0.mobile"], tmp_path / "again", accept_any=True)
