// The benchmark loop shared by vmf_run --bench and the apps' benchmark entry points.
#pragma once

#include <string>
#include <vector>

#include "vmf/bench.h"
#include "vmf/model.h"

namespace vmf {

// Runs `warmup` untimed and `runs` timed forward passes; fills timings, memory and settings of a
// BenchRun (artifact path/size and command are the caller's to set).
BenchRun benchmark_model(Model& model, const std::vector<float>& input, int warmup, int runs, int threads = 0,
                         int64_t baseline_rss_bytes = -1);

// The results document of a benchmark run on this device (vmf-deploy/bench v1 JSON text).
std::string benchmark_report(const Model& model, const BenchRun& run);

}  // namespace vmf
