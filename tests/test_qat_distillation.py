"""The executorch recipe's ``qat_steps``: fine-tuning the fake-quantized program towards the fp32 model's logits."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from vmf_deploy.quantize.pt2e_xnnpack import quantize_exported

SHAPE = (1, 8, 12, 12)


class ConvHead(torch.nn.Module):
    """Two convs and a Linear over the pooled map; one of the first conv's channels sets its output's int8 range
    far above the others', which int8 then rounds coarsely."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 16, 1)
        self.fc = torch.nn.Linear(16, 6)
        with torch.no_grad():
            self.conv1.bias[0] = 20.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x)))).mean((2, 3)))


def _clips(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(count)]


def _options(steps: int) -> dict:
    return {"per_channel": True, "calibration_method": "minmax", "fp32_modules": [], "fp32_outputs": False,
            "qat_steps": steps, "qat_learning_rate": 1e-4}


def _quantize(model: torch.nn.Module, steps: int, record: dict | None = None) -> torch.nn.Module:
    calibration = _clips(16, 0)
    example = torch.from_numpy(calibration[0])
    exported = torch.export.export(model, (example,), strict=False)
    program, _ = quantize_exported(exported, example, calibration, _options(steps), {}, 0,
                                   qat_clips=_clips(64, 1) if steps else (), qat_record=record)
    return program.module()


def _error(program: torch.nn.Module, model: torch.nn.Module, clips: list[np.ndarray]) -> float:
    """Mean squared logit error of ``program`` against ``model`` over ``clips``."""
    with torch.no_grad():
        return float(np.mean([torch.nn.functional.mse_loss(program(torch.from_numpy(c)),
                                                           model(torch.from_numpy(c))).item() for c in clips]))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return ConvHead().eval()


def test_fine_tuning_brings_the_int8_program_closer_to_fp32_on_clips_it_never_saw(model: torch.nn.Module) -> None:
    record: dict = {}
    calibrated = _quantize(model, 0)
    tuned = _quantize(model, 192, record)
    held_out = _clips(32, 2)
    assert _error(tuned, model, held_out) < 0.75 * _error(calibrated, model, held_out)
    assert record["steps"] == 192 and record["clips"] == 64 and record["learning_rate"] == 1e-4
    assert record["mse_after"] < record["mse_before"]


def test_the_float_model_and_the_calibrated_ranges_are_left_alone(model: torch.nn.Module) -> None:
    before = copy.deepcopy(model.state_dict())
    calibrated, tuned = _quantize(model, 0), _quantize(model, 64)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    def input_scale(program: torch.nn.Module) -> float:
        node = next(n for n in program.graph.nodes if "quantize_per_tensor" in str(n.target))
        return float(node.args[1])

    assert input_scale(tuned) == pytest.approx(input_scale(calibrated))


class TappedConvHead(torch.nn.Module):
    """ConvHead returning its second conv's output too, as vmf_deploy.numerics rebuilds a program with its taps."""

    def __init__(self, head: ConvHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tapped = torch.relu(self.head.conv2(torch.relu(self.head.conv1(x))))
        return self.head.fc(tapped.mean((2, 3))), tapped


@pytest.mark.parametrize("steps", [0, 32])
def test_a_program_with_taps_quantizes_and_fine_tunes_as_the_program_without(model: torch.nn.Module,
                                                                             steps: int) -> None:
    """Only the logits count: fp32_outputs keeps just their producer fp32, and the fine-tuning's loss is theirs."""
    options = {**_options(steps), "fp32_outputs": True}
    calibration, tuning = _clips(16, 0), _clips(32, 1) if steps else ()
    example = torch.from_numpy(calibration[0])
    programs = []
    for module, model_outputs in ((model, None), (TappedConvHead(model).eval(), 1)):
        exported = torch.export.export(module, (example,), strict=False)
        program, _ = quantize_exported(exported, example, calibration, options, {}, 0, qat_clips=tuning,
                                       model_outputs=model_outputs)
        programs.append(program.module())
    held_out = torch.from_numpy(_clips(1, 2)[0])
    with torch.no_grad():
        plain, (tapped_logits, tapped) = programs[0](held_out), programs[1](held_out)
    assert torch.allclose(plain, tapped_logits, rtol=0, atol=1e-6)
    assert tapped.shape == (1, 16, 12, 12)


def test_fine_tuning_without_clips_is_refused(model: torch.nn.Module) -> None:
    example = torch.from_numpy(_clips(1, 0)[0])
    exported = torch.export.export(model, (example,), strict=False)
    with pytest.raises(ValueError, match="qat_clips"):
        quantize_exported(exported, example, _clips(4, 0), _options(8), {}, 0)


@pytest.mark.parametrize("steps", [0, 4])
def test_the_export_loads_the_fine_tuning_clips_from_the_calibration_source(tmp_path, steps: int) -> None:
    from vmf_deploy.export.pipeline import load_model, plan_quantization
    from vmf_deploy.export.recipes import default_recipe_path, load_recipe
    from vmf_deploy.export.targets import get_target

    target = get_target("executorch")
    path = tmp_path / "executorch.toml"
    path.write_text(default_recipe_path(target).read_text().replace("qat_steps = 0", f"qat_steps = {steps}")
                    .replace("qat_clips = 2048", "qat_clips = 3"))
    model = load_model("560m", None, 4)
    plan = plan_quantization(target, load_recipe(target, path), "int8", model, tuple(model.cfg.input_shape), None,
                             "synthetic", 2)
    assert len(plan.calibration.clips) == 2
    if not steps:
        assert plan.qat is None
        return
    assert len(plan.qat.clips) == 3 and plan.qat.source == "synthetic"
    np.testing.assert_array_equal(plan.qat.clips[0], plan.calibration.clips[0])  # the same source, rendered alike


def test_a_fine_tuned_export_records_its_fine_tuning_and_passes_the_gate(trained_export) -> None:
    result = trained_export("executorch-int8-qat")  # --set quantization.qat_steps=8 --set quantization.qat_clips=8
    qat = result.manifest["export"]["quantization"]["qat"]
    assert qat["steps"] == 8 and qat["clips"] == 8 and qat["source"] == "synthetic" and len(qat["sha256"]) == 64
    assert qat["learning_rate"] == 3e-6 and np.isfinite([qat["mse_before"], qat["mse_after"]]).all()
    assert result.manifest["parity"]["status"] == "passed" and result.artifact.exists()
