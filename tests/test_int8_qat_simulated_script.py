"""benchmarks/int8_qat_simulated.py: its settings and its refusal of unknown recipe keys."""

from __future__ import annotations

import pytest
from benchmark_scripts import load_benchmark

RECIPE = {"qat_clips": 2048, "qat_learning_rate": 3e-6}


@pytest.fixture(scope="module")
def script():
    return load_benchmark("int8_qat_simulated")


def test_a_setting_fills_what_it_leaves_out_from_the_recipe(script) -> None:
    assert script.parse_setting("0", RECIPE) == {"qat_steps": 0, "qat_clips": 2048, "qat_learning_rate": 3e-6}
    assert script.parse_setting("512:256", RECIPE) == {"qat_steps": 512, "qat_clips": 256, "qat_learning_rate": 3e-6}
    assert script.parse_setting("64:32:1e-5", RECIPE)["qat_learning_rate"] == 1e-5
    with pytest.raises(ValueError, match="STEPS"):
        script.parse_setting("1:2:3:4", RECIPE)


def test_an_unknown_recipe_key_is_refused_before_anything_runs(script, capsys) -> None:
    with pytest.raises(SystemExit):
        script.main(["--checkpoint", "missing.safetensors", "--set", "quantization.qat_epochs=3"])
    assert "[quantization].qat_epochs is not a known key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--checkpoint", "missing.safetensors", "--set", "qat_epochs=3"])
    assert "is not TABLE.KEY=VALUE" in capsys.readouterr().err
