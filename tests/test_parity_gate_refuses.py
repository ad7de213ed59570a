"""The parity gate refuses artifacts that misread their input, at every tolerance the recipes ship.

Each model of :data:`MODELS` (a fixture returning the ``ExportResult`` of a 16-frame ONNX
export; its manifest's ``model.source`` says which model to rebuild as the reference) is
copied and tampered with once per module (``tests/tamper.py``); then
``parity_gate.run_gate`` in onnxruntime CPU must refuse every tampered copy under every
``[parity.tolerance.*]`` table of ``export/*.toml``, and pass the untampered copy under each of
them. On the seeded init, whose logits barely move between clips so that the per-clip limits
alone would let a tamper through, the centered SQNR refuses every tamper under the fp32 and fp16
tables. On the trained fixture, and under the int8 tables' 9 dB, the refusal may come from any
limit: the fixture differs with the CPU it was trained on, and so does what a tamper costs it on
the gate's 9 clips (tokens zeroed, fixture trained on an AMD Zen 5, 2026-12-05: centered SQNR
24.7 dB, above fp16's 20 dB, refused by cosine 0.907, top-1 77.8% and max relative error 0.75;
frames shifted under int8: cosine 0.44, max relative error 1.04, CI 2026-12-03).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from tamper import reversed_channels, reversed_time, shifted_frames, zeroed_tokens

from vmf_deploy.export import parity_gate
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.pipeline import load_model
from vmf_deploy.export.recipes import Recipe, load_recipe
from vmf_deploy.export.targets import TARGETS
from vmf_deploy.parity import SQNR_CAP_DB, ParityTolerance, compare_logits

MODELS = ["seeded_fixture", "trained_fixture"]
"""Fixtures of the models under test, one per model."""

TAMPERS: dict[str, Callable[[onnx.ModelProto, dict], onnx.ModelProto]] = {
    "bgr": lambda proto, cfg: reversed_channels(proto),
    "time_reversed": lambda proto, cfg: reversed_time(proto),
    "frames_shifted": lambda proto, cfg: shifted_frames(proto),
    "tokens_zeroed": lambda proto, cfg: zeroed_tokens(proto, cfg["num_tokens"], cfg["token_dim"]),
}
"""Tamper name → edit of the exported graph, given the model's config."""

RECIPES = {name: load_recipe(target) for name, target in TARGETS.items()}
DISTINCT: dict[ParityTolerance, tuple[str, str]] = {}
for _target, _recipe in RECIPES.items():
    for _precision in _recipe.tolerances:
        DISTINCT.setdefault(_recipe.tolerance(_precision), (_target, _precision))
TOLERANCES = [pytest.param(target, precision, id=f"{target}-{precision}") for target, precision in DISTINCT.values()]
"""Every distinct tolerance the recipes ship (a table equal to an earlier recipe's is gated once, as that one)."""


class MemoisedReference(torch.nn.Module):
    """The reference model with its logits remembered per clip (the gate runs it once per tolerance)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's logits on ``x``, computed once per distinct clip."""
        key = hashlib.sha256(np.ascontiguousarray(x.numpy()).tobytes()).hexdigest()
        if key not in self.seen:
            self.seen[key] = self.model(x)
        return self.seen[key]


@dataclass(frozen=True)
class GateCase:
    """One model: its reference, input shape and the artifacts to gate (``untampered`` + one per tamper)."""

    reference: torch.nn.Module
    input_shape: tuple[int, ...]
    artifacts: dict[str, Path]
    name: str


@pytest.fixture(scope="session")
def seeded_fixture(shared_export):
    """The seeded init of 560m exported to ONNX at 16 frames (shared with the other export tests)."""
    return shared_export("560m", "onnx", 16)


@pytest.fixture(scope="session")
def trained_fixture(trained_export):
    """The trained fixture (560m on the synthetic dataset, 16 frames of 48²) exported to ONNX."""
    return trained_export("onnx")


@pytest.fixture(scope="module", params=MODELS)
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GateCase:
    result = request.getfixturevalue(request.param)
    manifest = result.manifest
    source, config = manifest["model"]["source"], manifest["model"]["config"]
    model = load_model(manifest["model"]["variant"], source["checkpoint"], manifest["input"]["shape"][2])
    work = tmp_path_factory.mktemp(f"tampered-{request.param}")
    artifacts = {"untampered": work / result.artifact.name}
    shutil.copyfile(result.artifact, artifacts["untampered"])
    proto = onnx.load(str(artifacts["untampered"]))
    for name, edit in TAMPERS.items():
        artifacts[name] = work / f"{name}.onnx"
        onnx.save(edit(proto, config), str(artifacts[name]))
    return GateCase(MemoisedReference(model.eval()), tuple(manifest["input"]["shape"]), artifacts, request.param)


def _gate(case: GateCase, artifact: str, recipe: Recipe, precision: str) -> parity_gate.GateResult:
    return parity_gate.run_gate(case.reference, case.artifacts[artifact], "onnxruntime-cpu", recipe.seeds,
                                recipe.tolerance(precision), recipe.tolerance_key(precision), case.input_shape,
                                synthetic_clips=recipe.synthetic_clips)


def test_every_recipe_tolerance_checks_the_centered_sqnr() -> None:
    for target, recipe in RECIPES.items():
        assert recipe.synthetic_clips > 0, target
        for precision, tol in recipe.tolerances.items():
            assert tol.min_centered_sqnr_db is not None and tol.max_spread_rel_error is not None, (target, precision)


@pytest.mark.parametrize("target, precision", TOLERANCES)
def test_gate_passes_the_untampered_artifact(case: GateCase, target: str, precision: str) -> None:
    recipe = RECIPES[target]
    record = _gate(case, "untampered", recipe, precision).record
    assert record["status"] == "passed"
    assert record["metrics"]["clips"] == len(recipe.seeds) + recipe.synthetic_clips
    assert record["metrics"]["centered_sqnr_db"] >= recipe.tolerance(precision).min_centered_sqnr_db
    assert [s["count"] for s in record["clip_sources"]] == [len(recipe.seeds), recipe.synthetic_clips]


@pytest.mark.parametrize("target, precision", TOLERANCES)
@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_gate_refuses_the_tampered_artifact(case: GateCase, tamper: str, target: str, precision: str) -> None:
    if precision == "int8" and case.name == "seeded_fixture":
        pytest.skip("the int8 limits (9 dB) cannot judge the seeded init: its logits barely vary between clips, so "
                    "frames shifted or time reversed still reach 12.9 dB, and a correct int8 export of it measures "
                    "-3.7 dB (benchmarks/results/int8.json), refused anyway; int8 is judged on trained models")
    recipe = RECIPES[target]
    with pytest.raises(ExportError, match="parity gate refused") as info:
        _gate(case, tamper, recipe, precision)
    reasons = str(info.value).split(" (max abs error")[0]
    if precision == "int8" or case.name == "trained_fixture":
        assert any(limit in reasons for limit in ("centered SQNR", "cosine", "top-1", "relative error")), reasons
    else:
        assert "centered SQNR" in reasons


def test_a_shared_offset_passes_the_per_clip_limits_but_not_the_centered_sqnr() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((1, 400))
    reference = [base + 0.01 * rng.standard_normal((1, 400)) for _ in range(6)]  # logits barely move
    offset = [r + 0.02 * base for r in reference]  # the same error on every clip
    report = compare_logits(reference, offset)
    tol = ParityTolerance(max_rel_error=3e-2, min_cosine=0.999, min_centered_sqnr_db=20.0, max_spread_rel_error=0.1)
    assert report.max_rel_error < 3e-2 and report.min_cosine > 0.999 and report.top1_agreement == 1.0
    assert report.centered_sqnr_db < 0 and report.max_spread_rel_error > 1
    assert [f.split(" ")[0] for f in report.failures(tol)] == ["centered", "max"]


def test_exact_and_non_finite_candidates_stay_json_numbers() -> None:
    reference = [np.full((1, 4), float(i)) for i in range(3)]
    exact = compare_logits(reference, reference)
    assert exact.centered_sqnr_db == exact.sqnr_db == SQNR_CAP_DB and exact.max_spread_rel_error == 0.0
    json.dumps(exact.to_dict(), allow_nan=False)
    broken = compare_logits(reference, [reference[0], reference[1], np.full((1, 4), np.nan)])
    assert broken.centered_sqnr_db == broken.sqnr_db == -SQNR_CAP_DB
    assert broken.failures(ParityTolerance(max_rel_error=1.0, min_top1_agreement=0.0))  # non-finite always fails


def test_spread_metrics_need_two_clips() -> None:
    one = compare_logits([np.ones((1, 4))], [np.ones((1, 4))])
    assert one.centered_sqnr_db is None and one.max_spread_rel_error is None and not one.failures(ParityTolerance())
    assert "at least 2 clips" in one.failures(ParityTolerance(min_centered_sqnr_db=20.0))[0]
