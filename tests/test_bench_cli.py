"""vmf-bench end to end: the CI command, skipped rows, argument errors, plot, profiler aggregation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vmf_deploy.bench.plot import DPI, FIGSIZE
from vmf_deploy.bench.profile import onnxruntime_ops, profile_onnxruntime
from vmf_deploy.bench.schema import validate
from vmf_deploy.cli.bench import main
from vmf_deploy.runners import runner_class
from vmf_deploy.runners.onnxruntime_cpu import OnnxRuntimeCPURunner

PLOT_SIZE = (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))


def test_ci_command_three_backends(tmp_path, capsys, shared_export):
    """vmf-bench exports the .onnx itself and reuses the session's .pte (--artifact): both routes, one lowering less."""
    out_json, out_png = tmp_path / "out.json", tmp_path / "out.png"
    pte = shared_export("560m", "executorch", 16).artifact
    code = main(["--backend", "torch-cpu", "--backend", "onnxruntime-cpu", "--backend", "executorch-xnnpack",
                 "--variant", "560m", "--frames", "16", "--artifact", str(pte), "--runs", "3",
                 "--json", str(out_json), "--plot", str(out_png)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    doc = validate(json.loads(out_json.read_text()))
    rows = {r["backend"]: r for r in doc["results"]}
    assert set(rows) == {"torch-cpu", "onnxruntime-cpu", "executorch-xnnpack"}
    for backend, r in rows.items():
        assert r["status"] == "ok", (backend, r["status"])
        assert r["input_shape"] == [1, 3, 16, 172, 172] and r["threads"] >= 1
        assert len(r["latency_ms"]["samples"]) == 3
        assert r["memory"]["peak_rss_bytes"] > r["memory"]["baseline_rss_bytes"] > 0
        # the budget is the model's, the same on every backend; the runtime import is reported apart
        assert r["memory"]["weights_bytes"] == rows["torch-cpu"]["memory"]["weights_bytes"] > 4 * r["params"]
        assert r["memory"]["activation_set_bytes"] > 3 * 16 * 172 * 172 * 4  # at least the input clip
        assert r["memory"]["runtime_import_rss_bytes"] >= 0
        assert r["parity"]["clips"] == 3 and r["parity"]["top1_agreement"] == 1.0
        assert r["parity"]["max_rel_error"] < 1e-4
        assert r["gflops_per_s"] == pytest.approx(r["flops"] / 1e9 / (r["latency_ms"]["median"] / 1e3))
    assert rows["onnxruntime-cpu"]["artifact"]["format"] == "onnx"
    assert rows["executorch-xnnpack"]["artifact"]["format"] == "pte"
    assert rows["executorch-xnnpack"]["artifact"]["path"] == str(pte)
    assert rows["torch-cpu"]["artifact"] is None
    assert doc["device"]["libraries"]["onnxruntime"] and doc["settings"]["runs"] == 3
    with Image.open(out_png) as im:
        im.load()
        assert im.format == "PNG" and im.size == PLOT_SIZE
        assert len(np.unique(np.asarray(im.convert("L")))) > 16  # drawn, not blank
    for header in ("backend", "median ms", "peak MB", "parity"):
        assert header in printed


def test_unavailable_backends_are_skipped_rows(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no adb, no xcrun
    out_json = tmp_path / "skip.json"
    code = main(["--backend", "coreml", "--backend", "onnxruntime-cuda", "--backend", "torch-cuda",
                 "--backend", "android", "--backend", "ios", "--variant", "560m", "--frames", "4",
                 "--json", str(out_json), "--plot", str(tmp_path / "none.png")])
    assert code == 0
    doc = validate(json.loads(out_json.read_text()))
    status = {r["backend"]: r["status"] for r in doc["results"]}
    assert status["coreml"].startswith("skipped: needs macOS")
    assert status["onnxruntime-cuda"] == "skipped: no CUDA device"
    assert status["torch-cuda"].startswith("skipped: no CUDA device")
    assert status["android"].startswith("skipped: adb not installed")
    assert status["ios"].startswith("skipped: needs macOS")
    assert doc["records"] == []
    assert all(r["latency_ms"] is None and r["memory"] is None for r in doc["results"])
    assert not (tmp_path / "none.png").exists()  # nothing measured, nothing plotted
    assert "skipped: needs macOS" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--backend", "tpu", "--variant", "560m"], "unknown backend"),
    (["--backend", "torch-cpu", "--variant", "9g"], "unknown variant"),
    (["--backend", "torch-cpu", "--variant", "560m", "--frames", "0"], "--frames must be >= 1"),
    (["--backend", "torch-cpu", "--variant", "560m", "--peers", "movinet"], "unknown peer"),
    (["--backend", "torch-cpu"], "pass --variant"),
    (["--backend", "onnxruntime-cpu", "--artifact", "/nonexistent/m.onnx"], "not found"),
])
def test_bad_arguments_fail_clearly(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_gpu_and_coreml_runners_report_why_they_cannot_run():
    if not torch.cuda.is_available():
        assert runner_class("torch-cuda").availability().startswith("skipped: no CUDA device")
        assert runner_class("onnxruntime-tensorrt").availability().startswith("skipped: ")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnxruntime_profile_is_aggregated_by_op(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv3d(8, 8, 1)).eval()
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 4, 16, 16),), str(path), input_names=["video"], dynamo=False)
    runner = OnnxRuntimeCPURunner(threads=1)
    runner.load(path)
    prof = profile_onnxruntime(runner, np.zeros((1, 3, 4, 16, 16), np.float32), 3, tmp_path, path)
    ops = {o["op"]: o for o in prof["ops"]}
    assert {"Conv"} <= set(ops)
    assert ops["Conv"]["calls"] >= 1 and ops["Conv"]["total_ms"] > 0
    assert sum(o["share"] for o in prof["ops"]) == pytest.approx(1.0)
    assert [o["total_ms"] for o in prof["ops"]] == sorted((o["total_ms"] for o in prof["ops"]), reverse=True)


def test_onnxruntime_trace_aggregation_counts_kernels_only():
    trace = [{"cat": "Session", "name": "model_run", "ts": 0, "dur": 900},
             {"cat": "Node", "name": "conv1_kernel_time", "dur": 300, "args": {"op_name": "Conv"}},
             {"cat": "Node", "name": "conv1_fence_before", "dur": 5, "args": {"op_name": "Conv"}},
             {"cat": "Node", "name": "conv2_kernel_time", "dur": 100, "args": {"op_name": "Conv"}},
             {"cat": "Node", "name": "mm_kernel_time", "dur": 100, "args": {"op_name": "MatMul"}}]
    ops = onnxruntime_ops(trace, runs=2)
    assert ops[0] == {"op": "Conv", "total_ms": 0.2, "calls": 1, "share": 0.8}
    assert ops[1]["op"] == "MatMul" and ops[1]["share"] == pytest.approx(0.2)


def test_etdump_aggregation_drops_warmup_wrappers_and_instance_suffix():
    from vmf_deploy.bench.profile import executorch_ops

    rows = [("Convolution (NHWC, F32) IGEMM #1", [9.0, 1.0, 1.0]),
            ("Convolution (NHWC, F32) IGEMM #2", [9.0, 2.0, 2.0]),
            ("Transpose (ND, X32) #1", [5.0, 1.0, 1.0]),
            ("DELEGATE_CALL", [30.0, 5.0, 5.0]), ("Method::execute", [31.0, 5.1, 5.1])]
    ops = executorch_ops(rows, runs=2)
    assert [o["op"] for o in ops] == ["Convolution (NHWC, F32) IGEMM", "Transpose (ND, X32)"]
    assert ops[0]["total_ms"] == pytest.approx(3.0) and ops[0]["calls"] == 2
    assert ops[0]["share"] == pytest.approx(0.75)


def test_a_failing_backend_is_a_row_and_the_others_go_on(tmp_path):
    from vmf_deploy.bench.harness import BenchSettings, build_document, run_matrix
    from vmf_deploy.bench.machine import host_device_info

    bogus = tmp_path / "broken.onnx"
    bogus.write_bytes(b"not an onnx model")
    settings = BenchSettings(threads=1, warmup=0, runs=1, frames=4, parity_seeds=(0,))
    results = run_matrix(["onnxruntime-cpu", "torch-cpu"], ["560m"], settings, tmp_path / "work", artifacts=[bogus])
    failed, ok = results
    assert failed["status"].startswith("failed: RunnerError: onnxruntime could not load")
    assert failed["latency_ms"] is None and failed["parity"] is None
    # torch in the 1-thread worker vs the reference: same model, summation order may differ per CPU and threads
    assert ok["status"] == "ok" and ok["parity"]["max_rel_error"] <= 1e-5
    validate(build_document(results, settings, host_device_info()))


def test_rounds_pool_every_rounds_samples_into_one_result(tmp_path):
    from vmf_deploy.bench.harness import BenchSettings, build_document, merge_rounds, run_matrix
    from vmf_deploy.bench.machine import host_device_info

    settings = BenchSettings(threads=1, warmup=0, runs=2, frames=4, parity_seeds=(0,), rounds=2)
    seen = []
    results = run_matrix(["torch-cpu"], ["560m"], settings, tmp_path / "work", on_result=seen.append)
    assert len(seen) == 2 and len(results) == 1  # two fresh measurements, one pooled row
    (r,) = results
    assert r["latency_ms"]["samples"] == seen[0]["latency_ms"]["samples"] + seen[1]["latency_ms"]["samples"]
    assert r["latency_ms"]["median"] == pytest.approx(float(np.median(r["latency_ms"]["samples"])))
    assert r["memory"]["inference_rss_bytes"] == max(s["memory"]["inference_rss_bytes"] for s in seen)
    doc = validate(build_document(results, settings, host_device_info()))
    assert doc["settings"]["rounds"] == 2
    # a round that failed wins over the ones that worked: the row must not look healthy
    broken = dict(seen[1], status="failed: RunnerError: boom", latency_ms=None)
    assert merge_rounds([seen[0], broken])["status"] == "failed: RunnerError: boom"
