"""benchmarks/int8_recipe_ab.py: the recipe and the overrides it exports each value with."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark

from vmf_deploy.export.recipes import default_recipe_path, load_recipe
from vmf_deploy.export.targets import get_target


@pytest.fixture(scope="module")
def script():
    return load_benchmark("int8_recipe_ab")


def test_each_value_is_a_last_override_on_the_recipe_given(script, tmp_path: Path) -> None:
    target = get_target("executorch")
    source = tmp_path / "weight-only.toml"
    source.write_text(default_recipe_path(target).read_text().replace('kept_linears = "fp32"',
                                                                      'kept_linears = "weight_only_int8"'))
    overrides = script.value_overrides("qat_steps", "2048", ["quantization.qat_steps=8", "parity.seeds=[3, 4, 5]"])
    assert overrides[-1] == "quantization.qat_steps=2048"
    recipe = load_recipe(target, script.recipe_for("executorch", False, tmp_path, source), overrides)
    assert recipe.quantization["qat_steps"] == 2048 and recipe.quantization["kept_linears"] == "weight_only_int8"
    assert recipe.data["parity"]["seeds"] == [3, 4, 5] and recipe.overrides == overrides
    default = load_recipe(target, script.recipe_for("executorch", False, tmp_path, None),
                          script.value_overrides("qat_steps", "16", []))
    assert default.quantization["qat_steps"] == 16 and default.quantization["kept_linears"] == "fp32"
    seeded = load_recipe(target, script.recipe_for("executorch", True, tmp_path, None),
                         script.value_overrides("qat_steps", "16", []))
    assert seeded.data["parity"]["tolerance"]["int8"]["min_top1_agreement"] == 0.0  # accepts any int8 output


def test_an_unknown_key_is_refused_before_anything_is_exported(script, capsys) -> None:
    with pytest.raises(SystemExit):
        script.main(["--target", "executorch", "--key", "qat_step", "--values", "0", "8", "--variants", "560m"])
    assert "--set quantization.qat_step=0" in capsys.readouterr().err


def test_a_recipe_without_a_checkpoint_is_refused(script, capsys) -> None:
    with pytest.raises(SystemExit):
        script.main(["--target", "executorch", "--recipe", "x.toml"])
    assert "--recipe and --set need --checkpoint" in capsys.readouterr().err


def test_a_malformed_set_is_refused_before_anything_is_exported(script, capsys) -> None:
    with pytest.raises(SystemExit):
        script.main(["--target", "executorch", "--checkpoint", "run.safetensors", "--variants", "560m",
                     "--set", "kept_linears=weight_only_int8"])
    assert "is not TABLE.KEY=VALUE" in capsys.readouterr().err


def test_a_row_keeps_the_gates_accuracy_where_it_was_measured(script) -> None:
    metrics = {"clips": 243, "centered_sqnr_db": 17.3, "top1_agreement": 0.889, "min_cosine": 0.93, "max_rel_error": 0.37,
               "sqnr_db": 17.4, "reference_accuracy": 0.3625, "accuracy": 0.35}
    columns = script.gate_columns(metrics)
    assert columns["reference_accuracy"] == 0.3625 and columns["accuracy"] == 0.35
    assert "sqnr_db" not in columns and columns["clips"] == 243
    seeded = script.gate_columns({k: v for k, v in metrics.items() if "accuracy" not in k})
    assert seeded["accuracy"] is None and seeded["centered_sqnr_db"] == 17.3
