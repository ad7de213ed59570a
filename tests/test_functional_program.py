"""Skipping ``to_edge``'s functionalisation re-trace: only for a functional program, and the program never changes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.export import ExportedProgram

pytest.importorskip("executorch.exir")


class _Functional(nn.Module):
    """Conv, a view, a permute and a Linear: nothing for functionalisation to do."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        return self.fc(y.view(1, 8, -1).permute(0, 2, 1)).mean(dim=1)


class _InPlace(_Functional):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y.add_(1.0)
        return self.fc(y.mean(dim=(2, 3)))


class _BufferUpdate(_Functional):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.add_(1)
        return self.fc(self.conv(x).mean(dim=(2, 3))) + self.calls


class _Reshape(_Functional):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).permute(0, 2, 3, 1).reshape(-1, 8)).mean(dim=0, keepdim=True)


class _Offset(nn.Module):
    """A module with a buffer and no parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("value", torch.full((1, 8, 1, 1), 0.5))


class _LateBuffer(nn.Module):
    """Buffers captured as ``offset.value, fc.shift``; a re-trace lists them ``fc.shift, offset.value``.

    The re-traced module is rebuilt from the parameters first, so a parameterless module's buffer
    (5g's ``repeat_tokens``) moves behind those of modules with parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.offset = _Offset()
        self.conv, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 5)
        self.fc.register_buffer("shift", torch.full((5,), 0.25))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x) + self.offset.value).mean(dim=(2, 3))) + self.fc.shift


def _capture(model: nn.Module) -> ExportedProgram:
    torch.manual_seed(0)
    model.eval()
    for p in model.parameters():
        nn.init.normal_(p)
    program = torch.export.export(model, (torch.randn(1, 3, 6, 6),), strict=False)
    if isinstance(model, _BufferUpdate):  # functionalised: the buffer's update is an output, no op mutates
        program = program.run_decompositions({})
    return program


def _lower(program: ExportedProgram) -> bytes:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer


def _retraces(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the decomposition tables of every ``run_decompositions`` that really re-traces."""
    calls: list[int] = []
    stock = ExportedProgram.run_decompositions

    def counted(self: ExportedProgram, table: dict | None = None, *args: object, **kwargs: object) -> ExportedProgram:
        calls.append(-1 if table is None else len(table))
        return stock(self, table, *args, **kwargs)

    monkeypatch.setattr(ExportedProgram, "run_decompositions", counted)
    return calls


def _both_ways(model: nn.Module, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes, list[str], list[int]]:
    from vmf_deploy.export.functional_program import functionalisation_skipped

    stock = _lower(_capture(model))
    calls = _retraces(monkeypatch)
    program = _capture(model)
    with functionalisation_skipped(program) as blockers:
        skipping = _lower(program)
    return stock, skipping, blockers, calls


def test_a_functional_program_is_not_retraced_and_lowers_to_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    stock, skipping, blockers, calls = _both_ways(_Functional(), monkeypatch)
    assert blockers == [] and 0 not in calls
    assert skipping == stock


def test_inputs_are_put_in_the_retrace_order_and_the_program_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    from vmf_deploy.export.functional_program import functionalisation_skipped, retrace_input_order

    program = _capture(_LateBuffer())
    captured = [spec.target for spec in program.graph_signature.input_specs]
    predicted = [spec.target for spec in retrace_input_order(program)]
    assert captured[-3:] == ["offset.value", "fc.shift", None] and predicted[-3:] == ["fc.shift", "offset.value", None]
    assert predicted == [spec.target for spec in program.run_decompositions({}).graph_signature.input_specs]
    with functionalisation_skipped(program):
        handed_on = program.run_decompositions({})
    assert [spec.target for spec in handed_on.graph_signature.input_specs] == predicted
    placeholders = [node.name for node in handed_on.graph.nodes if node.op == "placeholder"]
    assert placeholders == [spec.arg.name for spec in handed_on.graph_signature.input_specs]
    stock, skipping, blockers, calls = _both_ways(_LateBuffer(), monkeypatch)
    assert blockers == [] and 0 not in calls
    assert skipping == stock


@pytest.mark.parametrize(("model", "blocker"), [
    (_InPlace(), "calls the mutating aten.add_.Tensor"),
    (_BufferUpdate(), "is a BUFFER_MUTATION"),
    (_Reshape(), "calls the non-core view aten.reshape.default"),
])
def test_a_program_with_work_is_functionalised_as_before(model: nn.Module, blocker: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    stock, skipping, blockers, calls = _both_ways(model, monkeypatch)
    assert blockers and all(blocker in b for b in blockers), blockers
    assert calls[0] == 0  # the stock re-trace ran
    assert skipping == stock


def test_a_pt2e_quantized_program_lowers_to_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from vmf_deploy.export.functional_program import functionalisation_blockers, functionalisation_skipped

    def quantized() -> ExportedProgram:
        program = _capture(_Functional())
        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(program.module(), quantizer)
        for seed in range(4):
            prepared(torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(seed)))
        return torch.export.export(convert_pt2e(prepared), (torch.randn(1, 3, 6, 6),), strict=False)

    stock = _lower(quantized())
    program = quantized()
    assert functionalisation_blockers(program) == []
    calls = _retraces(monkeypatch)
    with functionalisation_skipped(program):
        assert _lower(program) == stock
    assert 0 not in calls


def test_only_the_given_program_skips_and_the_method_is_restored() -> None:
    from vmf_deploy.export.functional_program import functionalisation_skipped

    stock = ExportedProgram.run_decompositions
    program, other = _capture(_Functional()), _capture(_Functional())
    with pytest.raises(RuntimeError), functionalisation_skipped(program):
        assert program.run_decompositions({}).graph is program.graph  # handed on, not re-traced
        assert program.run_decompositions({}).dialect == "ATEN"
        assert other.run_decompositions({}).graph is not other.graph
        raise RuntimeError
    assert ExportedProgram.run_decompositions is stock


@pytest.mark.slow  # two lowerings of a VMF model: about 60 s here
def test_vmf_frames_program_is_byte_identical_without_the_retrace_and_idle_edge_passes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A VMF frames model (one block per stage, 4 frames) as ``lower_to_executorch`` hands it to ``to_edge``."""
    from vmf_deploy.export.core_aten import to_core_aten
    from vmf_deploy.export.edge_passes import idle_edge_passes_skipped
    from vmf_deploy.export.functional_program import functionalisation_skipped
    from vmf_deploy.models.registry import build_seeded_model
    from vmf_deploy.rewrites import run_rewrites

    model = build_seeded_model("560m", frames=4, resolution=32, blocks=(1, 1, 1, 1)).eval()
    model.example_input_shape = model.cfg.input_shape
    frames, _ = run_rewrites("executorch", "module", model, fuse=True)

    def captured() -> ExportedProgram:
        with torch.no_grad():
            program = torch.export.export(frames, (torch.zeros(model.cfg.input_shape),), strict=False)
        to_core_aten(program)
        return program

    stock = _lower(captured())
    program = captured()
    calls = _retraces(monkeypatch)
    with functionalisation_skipped(program) as blockers, idle_edge_passes_skipped() as skipped:
        assert _lower(program) == stock
    assert blockers == [] and 0 not in calls  # no functionalisation re-trace
    assert {"NormalizeTransposePass", "SymToTensorPass", "RemoveMixedTypeOperators"} <= set(skipped)
