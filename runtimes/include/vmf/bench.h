// Benchmark reports in the vmf-bench results schema ("vmf-deploy/bench" version 1, see
// vmf_deploy/bench/schema.py and docs/bench.md), so phone runs and host runs compare directly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vmf/manifest.h"

namespace vmf {

// The machine a benchmark ran on (the schema's "device" object).
struct DeviceInfo {
  std::string name;
  std::string kind;  // "host", "android" or "ios"
  std::string os;
  std::string arch;
  std::string cpu_model;
  int logical_cores = 1;
  int64_t memory_bytes = -1;  // -1: unknown
  std::vector<std::string> isa_flags;  // SIMD features that matter to XNNPACK (avx2, avx512f, asimddp, i8mm, ...)
  std::map<std::string, std::string> libraries;
};

// Describes this machine (Linux, Android or Apple) as well as the platform allows.
DeviceInfo describe_this_device();

// Resident set size now and its peak so far, in bytes; -1 where the platform does not say.
int64_t current_rss_bytes();
int64_t peak_rss_bytes();

// Latency statistics in milliseconds (the schema's "latency_ms" object).
struct LatencyStats {
  double median = 0, p90 = 0, min = 0, max = 0, mean = 0, trimmed_mean = 0;
  std::vector<double> samples;
};

// median and p90 interpolate linearly (numpy's default); trimmed_mean drops the single fastest
// and slowest run when there are at least 3 (the ExecuTorch benchmark apps' "trimmean").
LatencyStats latency_stats(const std::vector<double>& samples_ms);

// Everything measured in one benchmark of one artifact.
struct BenchRun {
  std::string backend = "executorch-native";
  std::string artifact_path;
  int64_t artifact_size_bytes = 0;
  int threads = 0;  // 0: the runtime's default
  int warmup = 0;
  int runs = 0;
  double load_ms = 0;
  std::vector<double> samples_ms;
  int64_t baseline_rss_bytes = -1;
  int64_t peak_rss_bytes = -1;
  std::string command;
};

// The full results document (one "ok" result plus its flat benchmark-app records) as JSON text.
std::string bench_report_json(const Manifest& manifest, const BenchRun& run, const DeviceInfo& device);

// A deterministic input for timing: a synthetic gradient frame preprocessed by the manifest's
// preprocessing into every time slot (latency does not depend on pixel values).
std::vector<float> benchmark_input(const PreprocessSpec& spec);

// Current UTC time as ISO-8601 ("2026-11-24T01:02:03Z").
std::string utc_now_iso8601();

}  // namespace vmf
