#include "vmf/benchmark.h"

#include <chrono>

#include "vmf/error.h"
#include "vmf/preprocess.h"

namespace vmf {

std::vector<float> benchmark_input(const PreprocessSpec& spec) {
  const int size = spec.short_side;
  std::vector<uint8_t> pixels(size_t(size) * size * 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c) pixels[(size_t(y) * size + x) * 3 + c] = uint8_t((x * 7 + y * 3 + c * 50) % 256);
  ClipBuilder clip(spec);
  for (int t = 0; t < spec.frames; ++t) clip.set_frame(t, FrameView{pixels.data(), size, size, PixelFormat::kRGB, 0});
  return clip.tensor();
}

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
