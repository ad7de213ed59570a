// The vmf_run command line (tools/vmf_run.cpp is its main; the iOS app runs it headless): classify
// a video (a directory of decoded frames) or a preprocessed tensor with an exported .pte,
// benchmark it, or serve runs to a parent process (vmf-bench's executorch-native).
#include "vmf/cli.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "vmf/bench.h"
#include "vmf/benchmark.h"
#include "vmf/classify.h"
#include "vmf/error.h"
#include "vmf/image_io.h"
#include "vmf/manifest.h"
#include "vmf/model.h"
#include "vmf/preprocess.h"
#include "vmf/sha256.h"
#include "vmf/tensor_io.h"

namespace {

constexpr const char* kUsage = R"(usage:
  vmf_run MODEL.pte [--manifest M] --frames-dir DIR [--top-k K] [--threads N]
  vmf_run MODEL.pte [--manifest M] (--input-raw F [--shape S] | --input-npy F) [--output-raw OUT | --output-npy OUT]
  vmf_run MODEL.pte [--manifest M] [--frames-dir DIR | --input-raw F | --input-npy F]
          --bench [--warmup W] [--runs N] [--json OUT.json]
  vmf_run --manifest M --frames-dir DIR --preprocess-only --save-input OUT.raw
  vmf_run MODEL.pte [--manifest M] --serve
  vmf_run --sha256 PATH
  vmf_run --version

Runs an exported ExecuTorch program (XNNPACK) with the preprocessing and labels its manifest
(default MODEL.pte.manifest.json) describes. A frames directory holds a video's decoded frames
as binary PPM (P6) or PGM (P5) files in name order, e.g. `ffmpeg -i clip.mp4 DIR/%06d.ppm`.
Raw tensors are little-endian float32 in the manifest's input shape (NCTHW); .npy tensors are
float32, C order. Raw-tensor mode (an input tensor, a logits file) checks parity without decoding.

options:
  --manifest M       the artifact's manifest
  --frames-dir DIR   decoded frames; one clip is sampled over all of them
  --input-raw F      an already-preprocessed input tensor (raw float32)
  --shape S          with --input-raw: its shape, e.g. 1,3,16,172,172 (must be the manifest's)
  --input-npy F      an already-preprocessed input tensor (.npy float32)
  --save-input F     also write the preprocessed input tensor (raw float32)
  --output-raw F     write the logits (raw float32)
  --output-npy F     write the logits (.npy float32 in the manifest's output shape)
  --preprocess-only  preprocess only (no model needed); use with --save-input
  --top-k K          how many classes to print (default 5)
  --threads N        ExecuTorch thread-pool size (0 or absent: ExecuTorch's default)
  --bench            time --runs runs after --warmup runs (defaults 3 and 10); without an input
                     a synthetic clip made by the manifest's preprocessing is timed
  --json OUT         with --bench: write the vmf-bench results document (vmf-deploy/bench v1)
  --serve            load once, then answer "run IN OUT" lines on stdin (raw float32, or .npy
                     by extension)
  --sha256 PATH      print the manifest hash of a file or directory artifact
)";

struct Args {
  std::string model, manifest, frames_dir, input_raw, input_npy, save_input, output_raw, output_npy, json_out,
      sha256_path, shape;
  int top_k = 5, threads = 0, warmup = 3, runs = 10;
  bool bench = false, serve = false, preprocess_only = false, version = false;
  std::string command;
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

int parse_int(const std::string& flag, const std::string& value, int min) {
  try {
    size_t used = 0;
    const int v = std::stoi(value, &used);
    if (used == value.size() && v >= min) return v;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + " needs an integer >= " + std::to_string(min) + ", got '" + value + "'");
}

// The dimensions of a --shape value ("1,3,16,172,172" or "1x3x16x172x172").
std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> dims;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, text.find('x') != std::string::npos ? 'x' : ',')) {
    dims.push_back(parse_int("--shape", item, 1));
  }
  if (dims.empty()) throw UsageError("--shape needs dimensions such as 1,3,16,172,172");
  return dims;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 0; i < argc; ++i) a.command += (i ? " " : "") + std::string(argv[i]);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--manifest") a.manifest = value();
    else if (arg == "--frames-dir") a.frames_dir = value();
    else if (arg == "--input-raw") a.input_raw = value();
    else if (arg == "--input-npy") a.input_npy = value();
    else if (arg == "--save-input") a.save_input = value();
    else if (arg == "--output-raw") a.output_raw = value();
    else if (arg == "--output-npy") a.output_npy = value();
    else if (arg == "--shape") a.shape = value();
    else if (arg == "--json") a.json_out = value();
    else if (arg == "--sha256") a.sha256_path = value();
    else if (arg == "--top-k") a.top_k = parse_int(arg, value(), 1);
    else if (arg == "--threads") a.threads = parse_int(arg, value(), 0);
    else if (arg == "--warmup") a.warmup = parse_int(arg, value(), 0);
    else if (arg == "--runs") a.runs = parse_int(arg, value(), 1);
    else if (arg == "--bench") a.bench = true;
    else if (arg == "--serve") a.serve = true;
    else if (arg == "--preprocess-only") a.preprocess_only = true;
    else if (arg == "--version") a.version = true;
    else if (arg == "-h" || arg == "--help") throw UsageError("");
    else if (!arg.empty() && arg[0] == '-') throw UsageError("unknown option " + arg);
    else if (a.model.empty()) a.model = arg;
    else throw UsageError("unexpected argument " + arg + " (one model at a time)");
  }
  if (a.version || !a.sha256_path.empty()) return a;
  const int inputs = !a.frames_dir.empty() + !a.input_raw.empty() + !a.input_npy.empty();
  if (inputs > 1) throw UsageError("give one of --frames-dir, --input-raw, --input-npy");
  if (!a.output_raw.empty() && !a.output_npy.empty()) throw UsageError("give one of --output-raw, --output-npy");
  if (!a.shape.empty() && a.input_raw.empty()) throw UsageError("--shape describes --input-raw: add it");
  if (!a.shape.empty()) parse_shape(a.shape);
  if (a.preprocess_only) {
    if (a.frames_dir.empty() || a.save_input.empty() || a.manifest.empty()) {
      throw UsageError("--preprocess-only needs --manifest, --frames-dir and --save-input");
    }
    return a;
  }
  if (a.model.empty()) throw UsageError("missing MODEL.pte");
  if (a.manifest.empty()) a.manifest = vmf::manifest_path_for(a.model);
  if (!a.serve && !a.bench && inputs == 0) {
    throw UsageError("give an input: --frames-dir, --input-raw or --input-npy");
  }
  if (!a.json_out.empty() && !a.bench) throw UsageError("--json writes benchmark results: add --bench");
  return a;
}

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string text = "(";
  for (size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + ")";
}

// An input tensor file (.npy by extension, else raw float32) of the manifest's input shape.
std::vector<float> read_input_tensor(const std::string& path, const vmf::Manifest& m) {
  if (!vmf::is_npy_path(path)) return vmf::read_raw_f32(path, m.input_numel());
  vmf::FloatTensor t = vmf::read_npy_f32(path);
  const std::vector<int64_t> want(m.input_shape.begin(), m.input_shape.end());
  if (t.shape != want) {
    throw vmf::Error(path + " has shape " + shape_text(t.shape) + " but the model input is " + shape_text(want) +
                     ": preprocess the clip with the manifest's frames and crop");
  }
  return std::move(t.data);
}

// Writes logits to `path`: .npy (the manifest's output shape) by extension, else raw float32.
void write_logits(const std::string& path, const std::vector<float>& logits, const vmf::Manifest& m) {
  if (vmf::is_npy_path(path)) {
    vmf::write_npy_f32(path, m.output_shape, logits.data(), logits.size());
  } else {
    vmf::write_raw_f32(path, logits.data(), logits.size());
  }
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// The clip tensor of a frames directory, decoding only the sampled frames.
std::vector<float> tensor_from_frames(const std::string& dir, const vmf::PreprocessSpec& spec, double* decode_ms,
                                      double* preprocess_ms, size_t* num_frames) {
  const std::vector<std::string> files = vmf::list_frame_files(dir);
  *num_frames = files.size();
  const std::vector<int64_t> idx = vmf::sample_indices(int64_t(files.size()), spec.frames);
  vmf::ClipBuilder clip(spec);
  *decode_ms = *preprocess_ms = 0;
  for (int t = 0; t < spec.frames; ++t) {
    auto start = std::chrono::steady_clock::now();
    const vmf::Image image = vmf::read_pnm(files[size_t(idx[size_t(t)])]);
    *decode_ms += ms_since(start);
    start = std::chrono::steady_clock::now();
    clip.set_frame(t, image.view());
    *preprocess_ms += ms_since(start);
  }
  return clip.tensor();
}

std::vector<float> load_input(const Args& a, const vmf::Manifest& m, double* decode_ms, double* preprocess_ms,
                              std::string* description) {
  if (!a.frames_dir.empty()) {
    size_t n = 0;
    std::vector<float> t = tensor_from_frames(a.frames_dir, m.preprocessing, decode_ms, preprocess_ms, &n);
    *description = a.frames_dir + " (" + std::to_string(n) + " frames, " + std::to_string(m.preprocessing.frames) +
                   " sampled)";
    return t;
  }
  if (a.input_raw.empty() && a.input_npy.empty()) {
    *description = "a synthetic clip";
    return vmf::benchmark_input(m.preprocessing);
  }
  if (!a.input_raw.empty()) {
    const std::vector<int64_t> want(m.input_shape.begin(), m.input_shape.end());
    if (!a.shape.empty() && parse_shape(a.shape) != want) {
      throw vmf::Error("--shape " + a.shape + " differs from the model input " + shape_text(want) +
                       ": the program runs only the shape it was exported for");
    }
    *description = a.input_raw;
    return vmf::read_raw_f32(a.input_raw, m.input_numel());
  }
  *description = a.input_npy;
  return read_input_tensor(a.input_npy, m);
}

int serve(vmf::Model& model) {
  std::cout << "ready " << model.load_ms() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string verb, in_path, out_path;
    words >> verb >> in_path >> out_path;
    if (verb == "quit") break;
    try {
      if (verb != "run" || in_path.empty() || out_path.empty()) throw vmf::Error("expected 'run IN OUT'");
      const std::vector<float> input = read_input_tensor(in_path, model.manifest());
      const auto start = std::chrono::steady_clock::now();
      const std::vector<float> logits = model.run(input);
      const double run_ms = ms_since(start);
      write_logits(out_path, logits, model.manifest());
      std::cout << "ok " << run_ms << std::endl;
    } catch (const vmf::Error& e) {
      std::string msg = e.what();
      for (char& c : msg) c = (c == '\n') ? ' ' : c;
      std::cout << "error " << msg << std::endl;
    }
  }
  return 0;
}

int bench(const Args& a, vmf::Model& model, const std::vector<float>& input, int64_t baseline_rss) {
  vmf::BenchRun run = vmf::benchmark_model(model, input, a.warmup, a.runs, a.threads, baseline_rss);
  run.artifact_path = a.model;
  run.artifact_size_bytes = int64_t(std::filesystem::file_size(a.model));
  run.command = a.command;
  const vmf::LatencyStats s = vmf::latency_stats(run.samples_ms);
  std::printf("%s: load %.1f ms, %d warmup + %d runs: median %.2f ms, p90 %.2f ms, min %.2f ms, max %.2f ms\n",
              a.model.c_str(), run.load_ms, a.warmup, a.runs, s.median, s.p90, s.min, s.max);
  if (!a.json_out.empty()) {
    vmf::write_file_atomic(a.json_out, vmf::benchmark_report(model, run));
    std::printf("wrote %s\n", a.json_out.c_str());
  }
  return 0;
}

int run_main(const Args& a) {
  if (a.version) {
    std::printf("vmf_run %s (ExecuTorch %s; backends:", VMF_RUNTIME_VERSION, vmf::executorch_version().c_str());
    for (const auto& b : vmf::registered_backends()) std::printf(" %s", b.c_str());
    std::printf(")\n");
    return 0;
  }
  if (!a.sha256_path.empty()) {
    std::printf("%s\n", vmf::artifact_sha256_hex(a.sha256_path).c_str());
    return 0;
  }
  const vmf::Manifest manifest = vmf::load_manifest(a.manifest);
  if (a.preprocess_only) {
    double decode_ms = 0, preprocess_ms = 0;
    size_t n = 0;
    const std::vector<float> t = tensor_from_frames(a.frames_dir, manifest.preprocessing, &decode_ms, &preprocess_ms, &n);
    vmf::write_raw_f32(a.save_input, t.data(), t.size());
    std::printf("preprocessed %zu frames of %s into %s (decode %.1f ms, preprocess %.1f ms)\n", n,
                a.frames_dir.c_str(), a.save_input.c_str(), decode_ms, preprocess_ms);
    return 0;
  }
  const int64_t baseline_rss = vmf::current_rss_bytes();
  vmf::ModelOptions options;
  options.threads = a.threads;
  vmf::Model model(a.model, manifest, options);
  if (a.serve) return serve(model);

  double decode_ms = 0, preprocess_ms = 0;
  std::string description;
  const std::vector<float> input = load_input(a, manifest, &decode_ms, &preprocess_ms, &description);
  if (!a.save_input.empty()) vmf::write_raw_f32(a.save_input, input.data(), input.size());
  if (a.bench) return bench(a, model, input, baseline_rss);

  const std::vector<std::string> labels = vmf::load_labels(manifest.labels_path(), manifest.labels_count);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<float> logits = model.run(input);
  const double model_ms = ms_since(start);
  if (!a.output_raw.empty()) vmf::write_raw_f32(a.output_raw, logits.data(), logits.size());
  if (!a.output_npy.empty()) vmf::write_npy_f32(a.output_npy, manifest.output_shape, logits.data(), logits.size());
  std::printf("top-%d for %s with %s:\n", a.top_k, description.c_str(), a.model.c_str());
  int rank = 1;
  for (const vmf::Prediction& p : vmf::top_k(logits, labels, a.top_k)) {
    std::printf("  %d. %-40s %.4f  (class %d)\n", rank++, p.label.c_str(), p.score, p.index);
  }
  std::printf("timings: decode %.1f ms, preprocess %.1f ms, model %.1f ms (load %.1f ms)\n", decode_ms, preprocess_ms,
              model_ms, model.load_ms());
  return 0;
}

}  // namespace

namespace vmf {

int run_cli(int argc, char** argv) {
  Args args;
  try {
    args = parse_args(argc, argv);
  } catch (const UsageError& e) {
    if (std::string(e.what()).empty()) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "vmf_run: %s\n\n%s", e.what(), kUsage);
    return 2;
  }
  try {
    return run_main(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmf_run: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace vmf
