"""benchmarks/bench_matrix.py's issue-8 tables from synthetic results: verdicts, ratios, memory limits."""

from __future__ import annotations

import pytest
from benchmark_scripts import load_benchmark

MB = 2**20


@pytest.fixture(scope="module")
def bm():
    return load_benchmark("bench_matrix")


def result(backend: str, variant: str, ms: float, rss_mb: float = 100, weights_mb: float = 20,
           activations_mb: float = 50) -> dict:
    return {"backend": backend, "variant": variant, "status": "ok", "latency_ms": {"median": ms},
            "memory": {"inference_rss_bytes": int(rss_mb * MB), "weights_bytes": int(weights_mb * MB),
                       "activation_set_bytes": int(activations_mb * MB)}}


def test_targets_take_the_best_backend_and_both_x3d_ratios(bm) -> None:
    results = [result("onnxruntime-cpu", "560m", 24.0), result("executorch-xnnpack", "560m", 30.0),
               result("onnxruntime-cpu", "x3d-s", 720.0), result("executorch-xnnpack", "x3d-s", 480.0)]
    (row,) = [r for r in bm.target_rows(results, bm.BACKENDS) if r[0] == "560m"]
    assert row[1:5] == ["onnxruntime-cpu", "24.0", "≤ 25", "met"]
    assert row[5] == "1.25× (≤ 1.2×: missed)"
    assert row[7] == "30.0× (met)"  # X3D-S on onnxruntime, VMF's best backend: 720 / 24
    assert row[8] == "20.0× (missed)"  # X3D-S on its own best backend: 480 / 24 < 26


def test_a_missed_latency_says_by_how_much(bm) -> None:
    (row,) = [r for r in bm.target_rows([result("onnxruntime-cpu", "1g", 90.0)], bm.BACKENDS) if r[0] == "1g"]
    assert row[4] == "missed by 15.0 ms (1.20×)" and row[7] == "—"  # no X3D-S measured: no ratio


def test_memory_rows_judge_each_backend_against_twice_the_budget(bm) -> None:
    results = [result("onnxruntime-cpu", "5g", 200, rss_mb=141), result("executorch-xnnpack", "5g", 210, rss_mb=139)]
    (row,) = bm.memory_rows(results)
    assert row[:4] == ["5g", "20.0", "50.0", "140"]
    assert "onnxruntime-cpu 141 MB (2.01×: missed)" in row[4]
    assert "executorch-xnnpack 139 MB (1.99×: met)" in row[4]


def test_probe_line_summarises_the_drift(bm) -> None:
    line = bm.probe_line([{"gemm_gmacs": 20, "copy_gbps": 10.0}, {"gemm_gmacs": 90, "copy_gbps": 20.0},
                          {"gemm_gmacs": 70, "copy_gbps": 18.0}])
    assert "20 / 70 / 90 G multiply-adds/s" in line and "10.0 / 18.0 / 20.0 GB/s" in line
    assert bm.probe_line([]) == "No machine probes were taken."
