"""The ONNX optimize step leaves out SlicesSplit only where it cannot match, and the graph is the exporter's own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vmf_deploy.export import onnx_export, onnx_optimize
from vmf_deploy.export.targets import INPUT_NAME, OUTPUT_NAME
from vmf_deploy.models.registry import build_seeded_model
from vmf_deploy.rewrites import run_rewrites


class _Halves(nn.Module):
    """Reads the two halves of its input's last axis with two Slices: what SlicesSplit looks for."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x.narrow(-1, 0, 4)) * x.narrow(-1, 4, 4)


class _Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(x)).softmax(-1)


def _stock(model: nn.Module, shape: tuple[int, ...]) -> bytes:
    """What ``torch.onnx.export(optimize=True)`` itself produces, with the pipeline's names."""
    with onnx_export._quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(model.eval(), (torch.zeros(shape),), None, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], opset_version=18, dynamo=True, optimize=True,
                                    verbose=False, external_data=False)
    return program.model_proto.SerializeToString()


def _unoptimized(model: nn.Module, shape: tuple[int, ...]):  # noqa: ANN202 - torch.onnx.ONNXProgram
    with onnx_export._quiet_exporter(), torch.no_grad():
        return torch.onnx.export(model.eval(), (torch.zeros(shape),), None, opset_version=18, dynamo=True,
                                 optimize=False, verbose=False, external_data=False)


@pytest.mark.parametrize(("model", "reads_twice"), [(_Halves(), True), (_Plain(), False)])
def test_the_rule_is_left_out_only_without_two_slice_readers(model: nn.Module, reads_twice: bool) -> None:
    program = _unoptimized(model, (2, 8))
    assert onnx_optimize.reads_twice_by_slice(program.model) is reads_twice
    assert onnx_optimize.optimize(program) is (not reads_twice)


@pytest.mark.parametrize("model", [_Halves(), _Plain()], ids=["halves", "plain"])
def test_trace_is_byte_identical_to_the_exporters_optimize(model: nn.Module) -> None:
    traced = onnx_export.trace_to_onnx(model, (2, 8), 18, "recipe.toml")
    assert traced.SerializeToString() == _stock(model, (2, 8))
    assert [v.name for v in traced.graph.input] == [INPUT_NAME]
    assert [v.name for v in traced.graph.output] == [OUTPUT_NAME]


def test_vmf_graph_is_byte_identical_to_the_exporters_optimize(monkeypatch: pytest.MonkeyPatch) -> None:
    """A VMF model (one block per stage) takes the fast path and gets the exporter's own graph."""
    model = build_seeded_model("560m", frames=4, resolution=32, blocks=(1, 1, 1, 1)).eval()
    model.example_input_shape = model.cfg.input_shape
    rewritten, _ = run_rewrites("onnx", "module", model, fuse=True)
    skipped: list[bool] = []
    stock_optimize = onnx_optimize.optimize
    monkeypatch.setattr(onnx_optimize, "optimize", lambda program: skipped.append(stock_optimize(program)))
    traced = onnx_export.trace_to_onnx(rewritten, model.cfg.input_shape, 18, "recipe.toml")
    assert skipped == [True]
    assert traced.SerializeToString() == _stock(rewritten, model.cfg.input_shape)


def test_the_default_rules_are_restored_after_the_block() -> None:
    from onnxscript import rewriter

    stock = rewriter._DEFAULT_REWRITE_RULES
    with onnx_optimize.default_rules_without(onnx_optimize.QUADRATIC_RULES):
        kept = rewriter._DEFAULT_REWRITE_RULES
        assert [rule for rule in stock if rule.name != "SlicesSplit"] == list(kept)
        assert len(kept) == len(stock) - 1
    assert rewriter._DEFAULT_REWRITE_RULES is stock
