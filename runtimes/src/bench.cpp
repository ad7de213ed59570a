#include "vmf/bench.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iterator>
#include <numeric>
#include <sstream>
#include <thread>

#include <sys/utsname.h>
#include <unistd.h>

#if defined(__ANDROID__)
#include <sys/system_properties.h>
#elif defined(__APPLE__)
#include <TargetConditionals.h>
#include <mach/mach.h>
#include <sys/sysctl.h>
#endif

#include <nlohmann/json.hpp>

#include "vmf/error.h"
#include "vmf/preprocess.h"

namespace vmf {
namespace {

using nlohmann::json;

// Linear-interpolated quantile of sorted values (numpy's default method).
double quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * double(sorted.size() - 1);
  const size_t lo = size_t(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - double(lo));
}

// A "key: value" field of a /proc file (e.g. "VmHWM" of /proc/self/status), in the file's units.
int64_t proc_field(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) return std::stoll(line.substr(key.size() + 1));
  }
  return -1;
}

std::string proc_cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  for (const char* key : {"model name", "Hardware", "Processor"}) {
    in.clear();
    in.seekg(0);
    while (std::getline(in, line)) {
      if (line.compare(0, std::string(key).size(), key) == 0) {
        const auto colon = line.find(':');
        if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
      }
    }
  }
  return "unknown";
}

// The SIMD features XNNPACK dispatches on, from the "flags" (x86) or "Features" (Arm) line.
std::vector<std::string> proc_isa_flags() {
  static const char* kInteresting[] = {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                       "avx512_vnni", "avx512_bf16", "amx_tile", "asimd", "asimdhp", "asimddp",
                                       "i8mm", "bf16", "sve", "sve2", "sme"};
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 5, "flags") != 0 && line.compare(0, 8, "Features") != 0) continue;
    std::vector<std::string> found;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::vector<std::string> have{std::istream_iterator<std::string>(words), std::istream_iterator<std::string>()};
    for (const char* flag : kInteresting) {
      if (std::find(have.begin(), have.end(), flag) != have.end()) found.emplace_back(flag);
    }
    return found;
  }
  return {};
}

#if defined(__ANDROID__)
std::string android_property(const char* name) {
  char value[PROP_VALUE_MAX] = {0};
  __system_property_get(name, value);
  return value;
}
#elif defined(__APPLE__)
std::string apple_sysctl(const char* name) {
  size_t size = 0;
  if (sysctlbyname(name, nullptr, &size, nullptr, 0) != 0 || size == 0) return "unknown";
  std::string value(size, '\0');
  sysctlbyname(name, value.data(), &size, nullptr, 0);
  return std::string(value.c_str());
}
#endif

}  // namespace

DeviceInfo describe_this_device() {
  DeviceInfo d;
  struct utsname u {};
  uname(&u);
  d.arch = u.machine;
  d.logical_cores = std::max(1, int(std::thread::hardware_concurrency()));
#if defined(__ANDROID__)
  d.kind = "android";
  d.name = android_property("ro.product.manufacturer") + " " + android_property("ro.product.model");
  d.os = "Android " + android_property("ro.build.version.release") + " (API " +
         android_property("ro.build.version.sdk") + ")";
  d.isa_flags = proc_isa_flags();
  d.cpu_model = android_property("ro.soc.model");
  if (d.cpu_model.empty()) d.cpu_model = proc_cpu_model();
  const int64_t kb = proc_field("/proc/meminfo", "MemTotal");
  d.memory_bytes = kb > 0 ? kb * 1024 : -1;
#elif defined(__APPLE__)
  d.kind = (TARGET_OS_IPHONE ? "ios" : "host");
  d.name = apple_sysctl("hw.machine");
  d.os = std::string(u.sysname) + " " + u.release;
  d.cpu_model = apple_sysctl("machdep.cpu.brand_string");
  uint64_t mem = 0;
  size_t size = sizeof(mem);
  d.memory_bytes = sysctlbyname("hw.memsize", &mem, &size, nullptr, 0) == 0 ? int64_t(mem) : -1;
#else
  d.kind = "host";
  d.name = u.nodename;
  d.os = std::string(u.sysname) + " " + u.release;
  d.cpu_model = proc_cpu_model();
  d.isa_flags = proc_isa_flags();
  const int64_t kb = proc_field("/proc/meminfo", "MemTotal");
  d.memory_bytes = kb > 0 ? kb * 1024 : -1;
#endif
  return d;
}

int64_t current_rss_bytes() {
#if defined(__APPLE__)
  mach_task_basic_info_data_t info{};
  mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
  if (task_info(mach_task_self(), MACH_TASK_BASIC_INFO, task_info_t(&info), &count) != KERN_SUCCESS) return -1;
  return int64_t(info.resident_size);
#else
  const int64_t kb = proc_field("/proc/self/status", "VmRSS");
  return kb > 0 ? kb * 1024 : -1;
#endif
}

int64_t peak_rss_bytes() {
#if defined(__APPLE__)
  mach_task_basic_info_data_t info{};
  mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
  if (task_info(mach_task_self(), MACH_TASK_BASIC_INFO, task_info_t(&info), &count) != KERN_SUCCESS) return -1;
  return int64_t(info.resident_size_max);
#else
  const int64_t kb = proc_field("/proc/self/status", "VmHWM");
  return kb > 0 ? kb * 1024 : -1;
#endif
}

LatencyStats latency_stats(const std::vector<double>& samples_ms) {
  if (samples_ms.empty()) throw Error("no benchmark samples: --runs must be at least 1");
  LatencyStats s;
  s.samples = samples_ms;
  std::vector<double> sorted = samples_ms;
  std::sort(sorted.begin(), sorted.end());
  s.min = sorted.front();
  s.max = sorted.back();
  s.median = quantile(sorted, 0.5);
  s.p90 = quantile(sorted, 0.9);
  s.mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / double(sorted.size());
  if (sorted.size() >= 3) {
    s.trimmed_mean = std::accumulate(sorted.begin() + 1, sorted.end() - 1, 0.0) / double(sorted.size() - 2);
  } else {
    s.trimmed_mean = s.mean;
  }
  return s;
}

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

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string bench_report_json(const Manifest& manifest, const BenchRun& run, const DeviceInfo& device) {
  const LatencyStats lat = latency_stats(run.samples_ms);
  const std::string variant = manifest.variant.empty() ? manifest.artifact_file : manifest.variant;
  const json nullable_threads = run.threads > 0 ? json(run.threads) : json(nullptr);
  const double clips_per_s = 1000.0 / lat.median;
  const json flops = manifest.flops > 0 ? json(manifest.flops) : json(nullptr);
  const json gflops_per_s = manifest.flops > 0 ? json(double(manifest.flops) / 1e9 * clips_per_s) : json(nullptr);
  json memory = nullptr;
  if (run.peak_rss_bytes > 0 && run.baseline_rss_bytes > 0) {
    memory = {{"peak_rss_bytes", run.peak_rss_bytes},
              {"baseline_rss_bytes", run.baseline_rss_bytes},
              {"inference_rss_bytes", std::max<int64_t>(0, run.peak_rss_bytes - run.baseline_rss_bytes)},
#if defined(__APPLE__)
              {"method", "mach task_info resident_size_max (in-process)"}};
#else
              {"method", "VmHWM of /proc/self/status (in-process)"}};
#endif
  }
  json result = {
      {"backend", run.backend},
      {"variant", variant},
      {"status", "ok"},
      {"device", device.name},
      {"input_shape", manifest.input_shape},
      {"threads", nullable_threads},
      {"artifact",
       {{"path", run.artifact_path},
        {"format", manifest.artifact_format},
        {"size_bytes", run.artifact_size_bytes},
        {"sha256", manifest.artifact_sha256},
        {"precision", manifest.precision.empty() ? "fp32" : manifest.precision}}},
      {"params", manifest.params > 0 ? json(manifest.params) : json(nullptr)},
      {"flops", flops},
      {"load_ms", run.load_ms},
      {"latency_ms",
       {{"median", lat.median},
        {"p90", lat.p90},
        {"min", lat.min},
        {"max", lat.max},
        {"mean", lat.mean},
        {"trimmed_mean", lat.trimmed_mean},
        {"samples", lat.samples}}},
      {"clips_per_s", clips_per_s},
      {"gflops_per_s", gflops_per_s},
      {"memory", memory},
      {"parity", nullptr},
      {"profile", nullptr},
  };
  json libraries = json::object();
  for (const auto& [k, v] : device.libraries) libraries[k] = v;
  const json device_json = {
      {"name", device.name},
      {"kind", device.kind},
      {"os", device.os},
      {"arch", device.arch},
      {"cpu_model", device.cpu_model},
      {"physical_cores", nullptr},
      {"logical_cores", device.logical_cores},
      {"isa_flags", device.isa_flags},
      {"memory_bytes", device.memory_bytes > 0 ? json(device.memory_bytes) : json(nullptr)},
      {"gpu", nullptr},
      {"libraries", libraries},
  };
  // The flat records the ExecuTorch benchmark apps write, as vmf_deploy.bench.schema.records_for builds them.
  std::vector<std::pair<std::string, std::pair<double, std::string>>> values = {
      {"avg_inference_latency(ms)", {lat.mean, "ms"}},
      {"trimmean_inference_latency(ms)", {lat.trimmed_mean, "ms"}},
      {"median_inference_latency(ms)", {lat.median, "ms"}},
      {"p90_inference_latency(ms)", {lat.p90, "ms"}},
      {"min_inference_latency(ms)", {lat.min, "ms"}},
      {"max_inference_latency(ms)", {lat.max, "ms"}},
      {"model_load_time(ms)", {run.load_ms, "ms"}},
      {"throughput(clips/s)", {clips_per_s, "clips/s"}},
      {"artifact_size(mb)", {double(run.artifact_size_bytes) / (1 << 20), "MB"}},
  };
  if (!memory.is_null()) {
    values.push_back({"peak_inference_rss(mb)", {memory["inference_rss_bytes"].get<double>() / (1 << 20), "MB"}});
  }
  if (manifest.flops > 0) {
    values.push_back({"gflops", {double(manifest.flops) / 1e9, "GFLOPs"}});
    values.push_back({"achieved_gflops_per_s", {gflops_per_s.get<double>(), "GFLOP/s"}});
  }
  const json device_info = {{"device", device.name},
                            {"arch", device.arch},
                            {"os", device.os},
                            {"totalMem", device.memory_bytes > 0 ? json(device.memory_bytes) : json(nullptr)},
                            {"availMem", nullptr}};
  json records = json::array();
  for (const auto& [metric, value_unit] : values) {
    records.push_back({{"model", variant},
                       {"backend", run.backend},
                       {"metric", metric},
                       {"value", value_unit.first},
                       {"unit", value_unit.second},
                       {"benchmarkModel",
                        {{"name", variant},
                         {"backend", run.backend},
                         {"quantization", manifest.precision.empty() ? "fp32" : manifest.precision}}},
                       {"actualValue", value_unit.first},
                       {"targetValue", 0.0},
                       {"deviceInfo", device_info}});
  }
  const json doc = {
      {"schema", "vmf-deploy/bench"},
      {"schema_version", 1},
      {"created", utc_now_iso8601()},
      {"tool", {{"name", "vmf_run"}, {"version", VMF_RUNTIME_VERSION}, {"command", run.command}}},
      {"device", device_json},
      {"settings",
       {{"threads", nullable_threads},
        {"warmup", run.warmup},
        {"runs", run.runs},
        {"frames", manifest.preprocessing.frames}}},
      {"results", json::array({result})},
      {"records", records},
  };
  return doc.dump(2) + "\n";
}

}  // namespace vmf
