"""The versioned JSON schema of vmf-bench results (``vmf-deploy/bench``, version 1).

One document per run of ``vmf-bench`` (or of the native runner, or of a phone run pulled
back by ``adb``). It holds the machine description, the settings, one ``results`` entry
per backend × variant (``status`` ``ok`` / ``skipped: <why>`` / ``failed: <why>``) and the
flat ``records`` list: a superset of the entries the ExecuTorch benchmark apps write
(``benchmarkModel``, ``metric``, ``actualValue``, ``targetValue``, ``deviceInfo``) with the
plain ``model`` / ``backend`` / ``value`` / ``unit`` keys added. The format is documented
in ``docs/bench.md``; the JSON-Schema form is :data:`JSON_SCHEMA` (``docs/bench_schema.json``).

:func:`validate` checks a document against :data:`JSON_SCHEMA` (a small interpreter of
the JSON-Schema keywords the schema uses, so no extra dependency) and then the rules a
schema cannot express: a result that is not ``ok`` carries no measurement, an ``ok``
result carries its latency statistics, and every record belongs to an ``ok`` result.
"""

from __future__ import annotations

import re
from typing import Any

SCHEMA = "vmf-deploy/bench"
SCHEMA_VERSION = 1
STATUS_PATTERN = r"^(ok|skipped: .+|failed: .+)$"

# ExecuTorch benchmark-app metric names are kept where they exist; the others are ours.
METRICS: dict[str, str] = {
    "avg_inference_latency(ms)": "ms",
    "trimmean_inference_latency(ms)": "ms",
    "median_inference_latency(ms)": "ms",
    "p90_inference_latency(ms)": "ms",
    "min_inference_latency(ms)": "ms",
    "max_inference_latency(ms)": "ms",
    "model_load_time(ms)": "ms",
    "throughput(clips/s)": "clips/s",
    "peak_inference_rss(mb)": "MB",
    "artifact_size(mb)": "MB",
    "gflops": "GFLOPs",
    "achieved_gflops_per_s": "GFLOP/s",
    "parity_max_rel_error": "ratio",
    "parity_top1_agreement": "ratio",
}

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}

DEVICE_SCHEMA: dict = {
    "type": "object",
    "required": ["name", "os", "arch", "cpu_model", "logical_cores", "libraries"],
    "properties": {
        "name": {"type": "string"},
        "kind": {"enum": ["host", "android", "ios"]},
        "os": {"type": "string"},
        "arch": {"type": "string"},
        "cpu_model": {"type": "string"},
        "physical_cores": _INT_OR_NULL,
        "logical_cores": {"type": "integer", "minimum": 1},
        "isa_flags": {"type": "array", "items": {"type": "string"}},
        "memory_bytes": _INT_OR_NULL,
        "gpu": _STR_OR_NULL,
        "libraries": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

LATENCY_SCHEMA: dict = {
    "type": "object",
    "required": ["median", "p90", "min", "max", "mean", "samples"],
    "properties": {
        "median": _NUM, "p90": _NUM, "min": _NUM, "max": _NUM, "mean": _NUM, "trimmed_mean": _NUM,
        "samples": {"type": "array", "items": _NUM, "minItems": 1},
    },
}

PARITY_SCHEMA: dict = {
    "type": "object",
    "required": ["reference", "clips", "max_abs_error", "max_rel_error", "top1_agreement"],
    "properties": {
        "reference": {"type": "string"},
        "seeds": {"type": "array", "items": {"type": "integer"}},
        "clips": {"type": "integer", "minimum": 1},
        "max_abs_error": _NUM, "max_rel_error": _NUM, "min_cosine": _NUM,
        "top1_agreement": {"type": "number", "minimum": 0, "maximum": 1},
        "top5_agreement": {"type": "number", "minimum": 0, "maximum": 1},
    },
}

RESULT_SCHEMA: dict = {
    "type": "object",
    "required": ["backend", "variant", "status", "input_shape", "threads", "artifact", "flops", "load_ms",
                 "latency_ms", "clips_per_s", "gflops_per_s", "memory", "parity"],
    "properties": {
        "backend": {"type": "string"},
        "variant": {"type": "string"},
        "peer": {"type": "boolean"},
        "status": {"type": "string", "pattern": STATUS_PATTERN},
        "device": {"type": "string"},
        "device_info": DEVICE_SCHEMA,
        "input_shape": {"anyOf": [{"type": "null"},
                                  {"type": "array", "items": {"type": "integer", "minimum": 1},
                                   "minItems": 5, "maxItems": 5}]},
        "threads": _INT_OR_NULL,
        "artifact": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["path", "format", "size_bytes"],
            "properties": {"path": {"type": "string"}, "format": {"type": "string"},
                           "size_bytes": {"type": "integer", "minimum": 0}, "sha256": _STR_OR_NULL}}]},
        "params": _INT_OR_NULL,
        "flops": _INT_OR_NULL,
        "load_ms": _NUM_OR_NULL,
        "latency_ms": {"anyOf": [{"type": "null"}, LATENCY_SCHEMA]},
        "clips_per_s": _NUM_OR_NULL,
        "gflops_per_s": _NUM_OR_NULL,
        "memory": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["peak_rss_bytes", "baseline_rss_bytes", "inference_rss_bytes", "method"],
            "properties": {"peak_rss_bytes": {"type": "integer"}, "baseline_rss_bytes": {"type": "integer"},
                           "inference_rss_bytes": {"type": "integer"},
                           "runtime_import_rss_bytes": {"type": "integer"}, "weights_bytes": {"type": "integer"},
                           "activation_set_bytes": {"type": "integer"}, "method": {"type": "string"}}}]},
        "parity": {"anyOf": [{"type": "null"}, PARITY_SCHEMA]},
        "latency": {"type": "string", "pattern": "^not measured: .+"},
        "emulated_cpu": {"type": "string"},
        "profile": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["source", "ops"],
            "properties": {"source": {"type": "string"}, "file": _STR_OR_NULL,
                           "ops": {"type": "array", "items": {
                               "type": "object", "required": ["op", "total_ms", "calls", "share"],
                               "properties": {"op": {"type": "string"}, "total_ms": _NUM,
                                              "calls": {"type": "integer"}, "share": _NUM}}}}}]},
    },
}

RECORD_SCHEMA: dict = {
    "type": "object",
    "required": ["model", "backend", "metric", "value", "unit", "benchmarkModel", "actualValue", "targetValue",
                 "deviceInfo"],
    "properties": {
        "model": {"type": "string"},
        "backend": {"type": "string"},
        "metric": {"enum": sorted(METRICS)},
        "value": _NUM,
        "unit": {"type": "string"},
        "benchmarkModel": {"type": "object", "required": ["name", "backend", "quantization"],
                           "properties": {"name": {"type": "string"}, "backend": {"type": "string"},
                                          "quantization": {"type": "string"}}},
        "actualValue": _NUM,
        "targetValue": _NUM,
        "deviceInfo": {"type": "object", "required": ["device", "arch", "os"],
                       "properties": {"device": {"type": "string"}, "arch": {"type": "string"},
                                      "os": {"type": "string"}, "totalMem": _INT_OR_NULL,
                                      "availMem": _INT_OR_NULL}},
    },
}

JSON_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://vmf-deploy/schemas/bench-v1.json",
    "title": "vmf-bench results (vmf-deploy/bench, version 1)",
    "type": "object",
    "required": ["schema", "schema_version", "created", "tool", "device", "settings", "results", "records"],
    "properties": {
        "schema": {"const": SCHEMA},
        "schema_version": {"const": SCHEMA_VERSION},
        "created": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"},
        "tool": {"type": "object", "required": ["name", "version"],
                 "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                "command": {"type": "string"}}},
        "device": DEVICE_SCHEMA,
        "settings": {"type": "object", "required": ["threads", "warmup", "runs"],
                     "properties": {"threads": _INT_OR_NULL, "warmup": {"type": "integer", "minimum": 0},
                                    "runs": {"type": "integer", "minimum": 1},
                                    "rounds": {"type": "integer", "minimum": 1}, "frames": _INT_OR_NULL,
                                    "parity_seeds": {"type": "array", "items": {"type": "integer"}}}},
        "results": {"type": "array", "items": RESULT_SCHEMA},
        "records": {"type": "array", "items": RECORD_SCHEMA},
    },
}


class BenchSchemaError(ValueError):
    """A results document that does not follow ``vmf-deploy/bench`` version 1; the message names the path."""


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
    "boolean": (bool,), "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def _check(value: Any, schema: dict, path: str) -> None:
    """Interpret the JSON-Schema keywords used in this module (raises on the first violation)."""
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                _check(value, option, path)
                return
            except BenchSchemaError as e:
                errors.append(str(e))
        raise BenchSchemaError(" / ".join(errors))
    if "const" in schema and value != schema["const"]:
        raise BenchSchemaError(f"{path}: expected {schema['const']!r}, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise BenchSchemaError(f"{path}: {value!r} is not one of {schema['enum']}")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            raise BenchSchemaError(f"{path}: expected {' or '.join(names)}, got {type(value).__name__} {value!r:.60}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise BenchSchemaError(f"{path}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise BenchSchemaError(f"{path}: {value} > maximum {schema['maximum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        raise BenchSchemaError(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        missing = [k for k in schema.get("required", ()) if k not in value]
        if missing:
            raise BenchSchemaError(f"{path}: missing {missing}")
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                _check(item, props[key], f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                _check(item, schema["additionalProperties"], f"{path}.{key}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise BenchSchemaError(f"{path}: needs at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise BenchSchemaError(f"{path}: at most {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                _check(item, schema["items"], f"{path}[{i}]")


MEASURED_FIELDS = ("load_ms", "latency_ms", "clips_per_s", "gflops_per_s", "memory", "parity")


def validate(doc: Any) -> dict:
    """Validate a results document; return it, or raise :class:`BenchSchemaError` naming the problem."""
    if isinstance(doc, dict) and doc.get("schema") == SCHEMA and doc.get("schema_version") != SCHEMA_VERSION:
        raise BenchSchemaError(f"$.schema_version: this vmf-deploy reads version {SCHEMA_VERSION}, "
                               f"got {doc.get('schema_version')!r}: upgrade vmf-deploy or re-run the benchmark")
    _check(doc, JSON_SCHEMA, "$")
    ok_pairs = set()
    for i, r in enumerate(doc["results"]):
        where = f"$.results[{i}] ({r['backend']}/{r['variant']})"
        if r["status"] == "ok" and "latency" in r:
            timed = [k for k in ("load_ms", "latency_ms", "clips_per_s", "gflops_per_s", "memory") if r[k] is not None]
            if timed or r["parity"] is None:
                raise BenchSchemaError(f"{where}: latency {r['latency']!r} must carry parity and no time or memory, "
                                       f"has {timed or 'no parity'}")
            ok_pairs.add((r["variant"], r["backend"]))
        elif r["status"] == "ok":
            if r["latency_ms"] is None or r["clips_per_s"] is None:
                raise BenchSchemaError(f"{where}: status ok but no latency_ms/clips_per_s")
            lat = r["latency_ms"]
            if not lat["min"] <= lat["median"] <= lat["p90"] <= lat["max"]:
                raise BenchSchemaError(f"{where}: latency statistics out of order (min <= median <= p90 <= max)")
            ok_pairs.add((r["variant"], r["backend"]))
        else:
            measured = [k for k in MEASURED_FIELDS if r.get(k) is not None]
            if measured:
                raise BenchSchemaError(f"{where}: status {r['status']!r} must carry no measurement, has {measured}")
    for i, rec in enumerate(doc["records"]):
        if (rec["model"], rec["backend"]) not in ok_pairs:
            raise BenchSchemaError(f"$.records[{i}]: no ok result for {rec['model']}/{rec['backend']}")
        if rec["value"] != rec["actualValue"]:
            raise BenchSchemaError(f"$.records[{i}]: value and actualValue differ")
        if rec["unit"] != METRICS[rec["metric"]]:
            raise BenchSchemaError(f"$.records[{i}]: unit of {rec['metric']} is {METRICS[rec['metric']]!r}")
    return doc


def records_for(result: dict, device: dict) -> list[dict]:
    """The flat benchmark-app records of one ``ok`` result (empty for skipped/failed ones)."""
    if result["status"] != "ok":
        return []
    lat = result["latency_ms"] or {}
    values: dict[str, float | None] = {
        "avg_inference_latency(ms)": lat.get("mean"),
        "trimmean_inference_latency(ms)": lat.get("trimmed_mean"),
        "median_inference_latency(ms)": lat.get("median"),
        "p90_inference_latency(ms)": lat.get("p90"),
        "min_inference_latency(ms)": lat.get("min"),
        "max_inference_latency(ms)": lat.get("max"),
        "model_load_time(ms)": result["load_ms"],
        "throughput(clips/s)": result["clips_per_s"],
        "peak_inference_rss(mb)": None if result["memory"] is None else result["memory"]["inference_rss_bytes"] / 2**20,
        "artifact_size(mb)": None if result["artifact"] is None else result["artifact"]["size_bytes"] / 2**20,
        "gflops": None if result["flops"] is None else result["flops"] / 1e9,
        "achieved_gflops_per_s": result["gflops_per_s"],
        "parity_max_rel_error": None if result["parity"] is None else result["parity"]["max_rel_error"],
        "parity_top1_agreement": None if result["parity"] is None else result["parity"]["top1_agreement"],
    }
    info = {"device": device["name"], "arch": device["arch"], "os": device["os"],
            "totalMem": device.get("memory_bytes"), "availMem": None}
    model = {"name": result["variant"], "backend": result["backend"],
             "quantization": (result["artifact"] or {}).get("precision", "fp32")}
    return [{"model": result["variant"], "backend": result["backend"], "metric": metric, "value": float(value),
             "unit": METRICS[metric], "benchmarkModel": model, "actualValue": float(value), "targetValue": 0.0,
             "deviceInfo": info}
            for metric, value in values.items() if value is not None]


# Regenerate docs/bench_schema.json: python -m vmf_deploy.bench.schema > docs/bench_schema.json
if __name__ == "__main__":
    import json

    print(json.dumps(JSON_SCHEMA, indent=2))
