"""The ExecuTorch int8 layer diff in bounded memory: the same rows as torchao's numeric debugger run whole."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vmf_deploy.quantize.pt2e_layer_diff import layer_diff

SHAPE = (1, 8, 12, 12)


class SmallNet(torch.nn.Module):
    """Conv, ReLU, conv, residual add and a Linear over the pooled map: quantize / dequantize pairs everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv1(x))
        return self.fc((y + self.conv2(y)).mean((2, 3)))


@pytest.fixture(scope="module")
def programs() -> tuple[torch.fx.GraphModule, torch.fx.GraphModule, list[np.ndarray]]:
    """The float program (tagged for the debugger), its int8 conversion, and 3 clips to compare them on."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e import generate_numeric_debug_handle
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(8)]
    exported = torch.export.export(SmallNet().eval(), (torch.from_numpy(clips[0]),), strict=False)
    generate_numeric_debug_handle(exported)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(exported.module(), quantizer)
    with torch.no_grad():
        for clip in clips:
            prepared(torch.from_numpy(clip))
    return exported.module(), convert_pt2e(prepared), clips[:3]


def _whole(reference: torch.fx.GraphModule, converted: torch.fx.GraphModule,
           clips: list[np.ndarray]) -> dict[str, float]:
    """torchao's numeric debugger as documented: every node of both programs logged over every clip, then compared."""
    from torchao.quantization.pt2e import compare_results, extract_results_from_loggers
    from torchao.quantization.pt2e._numeric_debugger import prepare_for_propagation_comparison

    logged = []
    for model in (reference, converted):
        with_loggers = prepare_for_propagation_comparison(model)
        with torch.no_grad():
            for clip in clips:
                with_loggers(torch.from_numpy(clip))
        logged.append(extract_results_from_loggers(with_loggers))
    return {summary.ref_node_name: min(float(r.sqnr) for r in summary.results)
            for summary in compare_results(*logged).values()}


@pytest.mark.parametrize("budget", [1, 1 << 30], ids=["one-node-per-run", "one-run"])
def test_bounded_diff_matches_the_whole_comparison(programs, budget: int) -> None:
    reference, converted, clips = programs
    expected = _whole(reference, converted, clips)
    rows = layer_diff(reference, converted, clips, budget=budget)
    assert [row.node for row in rows] == [n.name for n in reference.graph.nodes if n.name in expected]
    assert len(rows) >= 6  # the convs, the ReLU, the add, the mean and the linear at least
    for row in rows:
        assert row.sqnr_db == pytest.approx(min(expected[row.node], 200.0), abs=1e-4), row.node
    assert any(row.sqnr_db < 60 for row in rows)  # the comparison sees the int8 rounding


def test_a_small_budget_logs_one_node_per_run(programs, monkeypatch) -> None:
    from torchao.quantization import pt2e

    reference, converted, clips = programs
    compared = []
    whole = pt2e.compare_results

    def counting(reference_results: dict, actual_results: dict) -> dict:
        compared.append((len(reference_results), len(actual_results)))
        return whole(reference_results, actual_results)

    monkeypatch.setattr(pt2e, "compare_results", counting)
    rows = layer_diff(reference, converted, clips, budget=1)
    assert set(compared) == {(1, 1)}
    assert len(compared) == len(rows) * len(clips)
    compared.clear()
    layer_diff(reference, converted, clips)
    assert compared == [(len(rows), len(rows))] * len(clips)


def test_rows_know_their_inputs_and_whether_they_are_rounded(programs) -> None:
    reference, converted, clips = programs
    rows = {row.node: row for row in layer_diff(reference, converted, clips)}
    # conv1 + ReLU is one int8 pattern: the ReLU's output is rounded, the conv's is not
    assert rows["relu"].rounded and not rows["conv2d"].rounded
    assert rows["conv2d_1"].input_sqnr_db == rows["relu"].sqnr_db
    assert rows["add"].input_sqnr_db == min(rows["relu"].sqnr_db, rows["conv2d_1"].sqnr_db)  # both branches
    assert rows["conv2d"].input_sqnr_db == 200.0  # it reads the program's input


def test_the_worst_layers_are_the_rounded_ones_that_add_the_most_noise_to_their_inputs() -> None:
    """Two parallel paths, as in a VMF block. The token path's fp32 mean cancels and shows a low SQNR; the map
    path's rounded depthwise conv after it takes its input from 40 to 25 dB. Ranked by the drop below the lowest
    SQNR before it in graph order, the mean came first and the conv's loss was hidden behind it."""
    from vmf_deploy.quantize.layer_diff import LayerError, format_worst, worst_layers

    def row(node: str, module: str, sqnr: float, inputs: float | None, rounded: bool | None) -> LayerError:
        return LayerError(tensor=node, node=node, op_type=node.rstrip("_0123456789"), module=module, sqnr_db=sqnr,
                          local_db=None, input_sqnr_db=inputs, rounded=rounded)

    rows = [row("linear", "blocks.0.former", 45.0, 200.0, True),  # 155 dB below its exact input, little noise
            row("mean", "blocks.0.former.norm1", -5.0, 45.0, False),
            row("conv2d", "blocks.0.mobile.expand", 40.0, 200.0, True),
            row("conv2d_1", "blocks.0.mobile.dw", 25.0, 40.0, True)]
    ranked = worst_layers(rows, count=2)
    assert [(layer.module, drop) for layer, drop in ranked] == [("blocks.0.mobile.dw", 15.0),
                                                                ("blocks.0.mobile.expand", 160.0)]
    assert len(worst_layers(rows)) == 3  # the fp32 mean is never a candidate
    assert "blocks.0.former.norm1" not in format_worst(rows)
    # rows that know neither (onnx, OpenVINO: ranked by their own quantization first) keep the graph-order drop
    legacy = [row(r.node, r.module, r.sqnr_db, None, None) for r in rows]
    assert worst_layers(legacy, count=1)[0][0].module == "blocks.0.former.norm1"
