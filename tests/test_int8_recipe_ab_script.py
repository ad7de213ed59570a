"""benchmarks/int8_recipe_ab.py: the recipe copies it exports each value with."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark

from vmf_deploy.export.recipes import default_recipe_path, load_recipe
from vmf_deploy.export.targets import get_target


@pytest.fixture(scope="module")
def script():
    return load_benchmark("int8_recipe_ab")


def test_each_value_is_written_into_the_recipe_given(script, tmp_path: Path) -> None:
    target = get_target("executorch")
    source = tmp_path / "weight-only.toml"
    source.write_text(default_recipe_path(target).read_text().replace('kept_linears = "fp32"',
                                                                      'kept_linears = "weight_only_int8"'))
    copy = script.recipe_with("executorch", "qat_steps", "2048", False, tmp_path / "value", source=source)
    quantization = load_recipe(target, copy).quantization
    assert quantization["qat_steps"] == 2048 and quantization["kept_linears"] == "weight_only_int8"
    default = load_recipe(target, script.recipe_with("executorch", "qat_steps", "16", False, tmp_path / "d"))
    assert default.quantization["qat_steps"] == 16 and default.quantization["kept_linears"] == "fp32"


def test_a_recipe_without_a_checkpoint_is_refused(script, capsys) -> None:
    with pytest.raises(SystemExit):
        script.main(["--target", "executorch", "--recipe", "x.toml"])
    assert "--recipe needs --checkpoint" in capsys.readouterr().err
