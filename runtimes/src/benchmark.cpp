#include "vmf/benchmark.h"

#include <chrono>

#include "vmf/error.h"

namespace vmf {

BenchRun benchmark_model(Model& model, const std::vector<float>& input, int warmup, int runs, int threads,
                         int64_t baseline_rss_bytes) {
  if (runs < 1) throw Error("a benchmark needs at least 1 timed run");
  if (warmup < 0) throw Error("warmup must be >= 0");
  BenchRun run;
  run.threads = threads;
  run.warmup = warmup;
  run.runs = runs;
  run.load_ms = model.load_ms();
  run.baseline_rss_bytes = baseline_rss_bytes;
  for (int i = 0; i < warmup; ++i) model.run(input);
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    model.run(input);
    run.samples_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  run.peak_rss_bytes = peak_rss_bytes();
  return run;
}

std::string benchmark_report(const Model& model, const BenchRun& run) {
  DeviceInfo device = describe_this_device();
  device.libraries["executorch"] = executorch_version();
  device.libraries["vmf_runtime"] = VMF_RUNTIME_VERSION;
  return bench_report_json(model.manifest(), run, device);
}

}  // namespace vmf
