"""The vmf-deploy/bench schema: documented example, validation rules, JSON-Schema file in sync."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from vmf_deploy.bench.harness import BenchSettings, build_document, empty_result, latency_stats
from vmf_deploy.bench.machine import host_device_info
from vmf_deploy.bench.schema import JSON_SCHEMA, METRICS, BenchSchemaError, records_for, validate

DOCS = Path(__file__).resolve().parents[1] / "docs"


def ok_result() -> dict:
    r = empty_result("onnxruntime-cpu", "560m", "ok", 2)
    r.update({"input_shape": [1, 3, 16, 172, 172], "params": 4_714_406, "flops": 138_000_000,
              "artifact": {"path": "a.onnx", "format": "onnx", "size_bytes": 2**20, "precision": "fp32"},
              "load_ms": 80.0, "latency_ms": latency_stats([8.0, 7.5, 9.0, 8.2]), "clips_per_s": 125.0,
              "gflops_per_s": 17.0, "memory": {"peak_rss_bytes": 5, "baseline_rss_bytes": 2, "inference_rss_bytes": 3,
                                                "method": "m"},
              "parity": {"reference": "PyTorch fp32 eager", "seeds": [0], "clips": 1, "max_abs_error": 0.0,
                         "max_rel_error": 0.0, "min_cosine": 1.0, "top1_agreement": 1.0, "top5_agreement": 1.0}})
    return r


@pytest.fixture
def doc() -> dict:
    results = [ok_result(), empty_result("coreml", "560m", "skipped: needs macOS", 2)]
    return build_document(results, BenchSettings(threads=2, runs=4, frames=16), host_device_info(), "vmf-bench ...")


def test_valid_document_and_records(doc):
    assert validate(doc) is doc
    metrics = {r["metric"] for r in doc["records"]}
    assert metrics == set(METRICS)  # every metric of an ok result with every field measured
    rec = next(r for r in doc["records"] if r["metric"] == "median_inference_latency(ms)")
    assert rec["value"] == rec["actualValue"] == doc["results"][0]["latency_ms"]["median"]
    assert rec["benchmarkModel"] == {"name": "560m", "backend": "onnxruntime-cpu", "quantization": "fp32"}
    assert {r["backend"] for r in doc["records"]} == {"onnxruntime-cpu"}  # skipped rows have no records


def test_unmeasured_fields_are_left_out_of_records():
    r = ok_result()
    r["memory"] = r["parity"] = None
    metrics = {x["metric"] for x in records_for(r, host_device_info())}
    assert "peak_inference_rss(mb)" not in metrics and "parity_max_rel_error" not in metrics


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d["results"][1].update(latency_ms=d["results"][0]["latency_ms"]), "must carry no measurement"),
    (lambda d: d["results"][0].update(latency_ms=None), "status ok but no latency"),
    (lambda d: d["results"][0].update(status="broken"), "does not match"),
    (lambda d: d["results"][0]["latency_ms"].update(min=99.0), "out of order"),
    (lambda d: d["records"][0].update(backend="coreml"), "no ok result"),
    (lambda d: d["records"][0].update(value=-1.0), "value and actualValue differ"),
    (lambda d: d["records"][0].update(metric="speed"), "is not one of"),
    (lambda d: d.pop("device"), "missing"),
    (lambda d: d["device"].update(logical_cores="two"), "expected integer"),
    (lambda d: d.update(schema_version=2), "reads version 1"),
    (lambda d: d["results"][0].update(threads=True), "expected integer or null"),
])
def test_invalid_documents_are_refused(doc, mutate, match):
    bad = copy.deepcopy(doc)
    mutate(bad)
    with pytest.raises(BenchSchemaError, match=match):
        validate(bad)


def test_json_schema_file_is_in_sync():
    assert json.loads((DOCS / "bench_schema.json").read_text()) == JSON_SCHEMA


def test_documented_example_validates():
    text = (DOCS / "bench.md").read_text()
    block = re.search(r"```json\n(.*?)```", text, re.S).group(1)
    # the doc shows alternatives as `a" | "b`; keep the first of each
    block = re.sub(r'"([^"]*)" \| "[^"]*"(?: \| "[^"]*")*', r'"\1"', block)
    validate(json.loads(block))


def test_latency_stats():
    s = latency_stats([5.0, 1.0, 3.0, 2.0, 4.0, 100.0, 6.0, 7.0, 8.0, 9.0])
    assert s["median"] == 5.5 and s["min"] == 1.0 and s["max"] == 100.0
    assert s["p90"] == pytest.approx(18.1)
    assert s["trimmed_mean"] == pytest.approx(5.5)  # the 80 % middle drops 1.0 and 100.0
    assert s["samples"][0] == 5.0  # in run order


def test_machine_probes_measure_something_positive() -> None:
    """The drift probes bench_matrix takes between measurements (kept tiny here)."""
    from vmf_deploy.bench.machine import copy_gbps, gemm_gflops

    assert gemm_gflops(seconds=0.02, n=64) > 0
    assert copy_gbps(seconds=0.02, megabytes=4) > 0
