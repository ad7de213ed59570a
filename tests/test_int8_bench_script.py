"""benchmarks/int8.py: an int8 export the gate refuses is a row of the table and of the JSON, not a crash."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from benchmark_scripts import load_benchmark

from vmf_deploy.export import pipeline
from vmf_deploy.export.errors import ExportError

REFUSAL = "parity gate refused 560m-64f-int8.pte: on 243 clips, centered SQNR 16.8 dB\nLayers adding the most error:"


@pytest.fixture
def script():
    return load_benchmark("int8")


def test_a_refused_int8_export_is_a_row(script, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    exported = []

    def export_model(variant, target, out_dir, precision, **kwargs):  # noqa: ANN001, ANN003, ANN202, ARG001
        exported.append((target, precision))
        if precision == "int8":
            raise ExportError(REFUSAL)
        return SimpleNamespace(artifact=tmp_path / f"{target}.bin", manifest={"input": {"shape": [1, 3, 16, 48, 48]}})

    def never_timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a refused pair is not timed")

    monkeypatch.setattr(pipeline, "export_model", export_model)
    monkeypatch.setattr(script, "RESULTS", tmp_path / "int8.json")
    monkeypatch.setattr(script, "interleaved_ms", never_timed)
    assert script.main(["--checkpoint", "run/last.safetensors", "--targets", "executorch", "openvino",
                        "--out", str(tmp_path / "out")]) == 0
    assert exported == [("executorch", "fp32"), ("executorch", "int8"), ("openvino", "fp32"), ("openvino", "int8")]
    rows = json.loads((tmp_path / "int8.json").read_text())["runs"][-1]["rows"]
    assert rows == [{"target": target, "backend": script.BACKENDS[target],
                     "gate": "refused: parity gate refused 560m-64f-int8.pte: on 243 clips, centered SQNR 16.8 dB"}
                    for target in ("executorch", "openvino")]
    printed = capsys.readouterr().out
    assert "Layers adding the most error" in printed  # the whole refusal, layer diff included, is printed once
    assert printed.count("refused: parity gate refused") == 2  # and each target's row in the table


def test_a_refused_fp32_export_stops_the_run(script, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def export_model(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ExportError("parity gate refused 560m-16f.pte")

    monkeypatch.setattr(pipeline, "export_model", export_model)
    monkeypatch.setattr(script, "RESULTS", tmp_path / "int8.json")
    with pytest.raises(ExportError, match="560m-16f.pte"):
        script.main(["--checkpoint", "run/last.safetensors", "--targets", "onnx", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "int8.json").exists()
